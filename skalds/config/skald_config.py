"""``SkaldConfig``: the seed's way to configure a Skald from code.

It maps onto the same Hydra config as the command line (see
:class:`~skalds.config.cluster_config.ClusterConfig`): every argument of the seed's
``SkaldConfig`` is accepted, a missing one is read from the seed's environment variable, and
without any host the embedded backends are used, so a script runs the whole system on one
machine.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from skalds.config._enum import SkaldEnvEnum, SkaldModeEnum
from skalds.config.cluster_config import ClusterConfig
from skalds.config.systemconfig import process_skald_id


class SkaldConfig(ClusterConfig):
    """Settings of one Skald, by the seed's names (plus a few of Skalds' own)."""

    skald_id: str = Field(
        default_factory=process_skald_id,
        description="Node id (default: SKALD_ID, else 'skalds-' + 5 hex digits drawn once per process)",
    )
    skald_env: SkaldEnvEnum = Field(
        SkaldEnvEnum.DEV, description="Accepted for the seed's scripts; no effect in Skalds"
    )
    skald_mode: SkaldModeEnum = Field(
        SkaldModeEnum.NODE,
        description='"node" (runs assigned tasks), "edge" (places and runs its YAML\'s tasks itself, no '
        'controller needed) or "single_process" (runs the YAML\'s first task in this process)',
    )
    yaml_file: str | None = Field(
        None, description="Declared tasks (seed all_workers.yml format): edge and single_process modes"
    )
    task_worker_retry: int = Field(
        -1, ge=-1, description="Retries after a lost worker or node (node.max_retries); -1: conf's default"
    )
    capacity: int = Field(16, ge=1, description="Worker processes this Skald runs at once (Skalds only)")
    controller_host: str = Field("127.0.0.1", description="Embedded backends: where the REST API listens")
    controller_port: int = Field(8000, description="Embedded backends: the REST API's port")

    def overrides(self) -> list[str]:
        """An edge places and runs its own tasks: no controller, on the real servers or the
        embedded backends. A node on the real servers; on the embedded backends controller +
        node (standalone), as nothing else could hand it tasks."""
        if self.skald_mode == SkaldModeEnum.EDGE:
            return [*super().overrides(), "+mode=edge", *([] if self.distributed else ["backend=local"])]
        if not self.distributed:
            return super().overrides()
        return [*super().overrides(), "+mode=node"]

    def conf_values(self) -> dict[str, Any]:
        """The node's keys, on top of the servers and logging."""
        values = {
            **super().conf_values(),
            "node.id": self.skald_id,
            "node.capacity": self.capacity,
            "controller.host": self.controller_host,
            "controller.port": self.controller_port,
        }
        if self.task_worker_retry >= 0:
            values["node.max_retries"] = self.task_worker_retry
        return values
