"""Seed path ``skalds.config.system_controller_config``: ``SystemControllerConfig``.

Every argument of the seed's class is accepted; a missing one is read from the seed's
environment variable (``SYSTEM_CONTROLLER_PORT``, ``REDIS_HOST``, ...). It maps onto
``python -m skalds +mode=controller`` (see
:class:`~skalds.config.cluster_config.ClusterConfig`); without any host, onto a controller on
the embedded backends.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from skalds.config._enum import DispatcherStrategyEnum, SystemControllerModeEnum
from skalds.config.cluster_config import ClusterConfig
from skalds.config.systemconfig import SEED_DEFAULTS

_POLLING = "Accepted for the seed's scripts; no effect in Skalds, whose monitor and dispatcher react to events"


class SystemControllerConfig(ClusterConfig):
    """Settings of the controller (REST API + dashboard, dispatcher, monitor), by the seed's
    names."""

    system_controller_mode: SystemControllerModeEnum = Field(
        SystemControllerModeEnum.CONTROLLER,
        description="CONTROLLER, MONITOR or DISPATCHER: all three run the whole controller here "
        "(API, dispatcher and monitor), as a controller without them cannot keep tasks running",
    )
    system_controller_host: str = Field(SEED_DEFAULTS["SYSTEM_CONTROLLER_HOST"], description="Where the API listens")
    system_controller_port: int = Field(
        SEED_DEFAULTS["SYSTEM_CONTROLLER_PORT"], ge=0, le=65535, description="The API's port"
    )
    monitor_skald_interval: int = Field(SEED_DEFAULTS["MONITOR_SKALD_INTERVAL"], description=_POLLING)
    monitor_task_interval: int = Field(SEED_DEFAULTS["MONITOR_TASK_INTERVAL"], description=_POLLING)
    monitor_heartbeat_timeout: int = Field(SEED_DEFAULTS["MONITOR_HEARTBEAT_TIMEOUT"], description=_POLLING)
    dispatcher_interval: int = Field(SEED_DEFAULTS["DISPATCHER_INTERVAL"], description=_POLLING)
    dispatcher_strategy: DispatcherStrategyEnum = Field(
        DispatcherStrategyEnum.LEAST_TASKS,
        description="LEAST_TASKS (dispatch=least_loaded), ROUND_ROBIN (round_robin) or RANDOM (random)",
    )

    def overrides(self) -> list[str]:
        """The controller mode with the strategy's dispatch policy; on the embedded backends
        when no host is named (the controller mode would pick the real ones)."""
        out = [*super().overrides(), "+mode=controller", f"dispatch={self.dispatcher_strategy.policy}"]
        if not self.distributed:
            out.append("backend=local")
        return out

    def conf_values(self) -> dict[str, Any]:
        """Where the API listens, on top of the servers and logging."""
        return {
            **super().conf_values(),
            "controller.host": self.system_controller_host,
            "controller.port": self.system_controller_port,
        }
