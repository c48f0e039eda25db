"""``SkaldConfig``: the seed's way to configure a Skald from code.

It maps onto the same Hydra config as the command line: each field becomes an override of
``conf/``. Without any host the embedded backends are used, so a script runs the whole
system on one machine.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field


class SkaldConfig(BaseModel):
    """Settings of one Skald, by the seed's names."""

    model_config = ConfigDict(extra="forbid")

    skald_mode: str = Field("node", description='"node" (runs assigned tasks) or "edge" (runs its YAML\'s tasks)')
    skald_id: str | None = Field(None, description="Stable node id (default: host name)")
    yaml_file: str | None = Field(None, description="Declared tasks (seed all_workers.yml format), edge mode")
    log_split_with_worker_id: bool = Field(False, description="Tag every log line with the worker's task id")
    log_level: str = "INFO"
    capacity: int = Field(16, ge=1)
    redis_host: str | None = None
    redis_port: int = 6379
    redis_password: str | None = None
    kafka_host: str | None = None
    kafka_port: int = 9092
    kafka_username: str | None = None
    kafka_password: str | None = None
    mongo_host: str | None = None
    db_name: str = Field(default_factory=lambda: os.environ.get("DB_NAME", "skalds"))
    data_dir: str = "./.skalds"
    controller_host: str = "127.0.0.1"
    controller_port: int = 8000

    @property
    def distributed(self) -> bool:
        """True when any server is named: then all three backends are the real ones."""
        return any((self.redis_host, self.kafka_host, self.mongo_host))

    def overrides(self) -> list[str]:
        """The Hydra overrides this config stands for."""
        out = [
            f"log_level={self.log_level}",
            f"node.capacity={self.capacity}",
            f"data_dir={self.data_dir}",
            f"controller.host={self.controller_host}",
            f"controller.port={self.controller_port}",
        ]
        if self.skald_id:
            out.append(f"node.id={self.skald_id}")
        return out
