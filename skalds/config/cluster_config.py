"""What the seed's ``SkaldConfig`` and ``SystemControllerConfig`` share: the servers, logging,
the environment as defaults, and the one mapping of such a config onto ``conf/``.

A field that is not given (or given as None, as the seed allowed) takes the seed's environment
variable of the same name in upper case (``redis_host`` <- ``REDIS_HOST``), from the process
environment or a ``.env`` file, read when the config is built. Hosts are the exception to the
seed's defaults: a host nobody named stays None, and with no host at all Skalds runs on its
embedded backends rather than dialling ``localhost``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from skalds.config._enum import LogLevelEnum
from skalds.config.env import environment
from skalds.config.systemconfig import SEED_DEFAULTS, convert
from skalds.utils.logging import std_level

if TYPE_CHECKING:
    from omegaconf import DictConfig

_IGNORED = "Accepted for the seed's scripts; no effect in Skalds"


class ClusterConfig(BaseModel):
    """Servers and logging, by the seed's names. Subclasses add the process's own fields and
    extend :meth:`overrides`."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    log_level: LogLevelEnum = Field(LogLevelEnum.INFO, description="TRACE logs as DEBUG, SUCCESS as INFO")
    log_path: str = Field(SEED_DEFAULTS["LOG_PATH"], description=f"{_IGNORED}: Skalds logs to stderr")
    log_retention: str | int = Field(SEED_DEFAULTS["LOG_RETENTION"], description=f"{_IGNORED}: no log files")
    log_rotation_mb: str | int = Field(SEED_DEFAULTS["LOG_ROTATION_MB"], description=f"{_IGNORED}: no log files")
    log_split_with_worker_id: bool = Field(
        False, description=f"{_IGNORED}: a worker's log lines always carry its task id"
    )
    redis_host: str | None = Field(None, description="Redis/Valkey host; any host given means the real servers")
    redis_port: int = SEED_DEFAULTS["REDIS_PORT"]
    redis_password: str | None = None
    redis_sync_period: int = Field(
        SEED_DEFAULTS["REDIS_SYNC_PERIOD"],
        description=f"{_IGNORED}: nodes renew leases every node.lease_renew_interval_s",
    )
    redis_key_ttl: int = Field(
        SEED_DEFAULTS["REDIS_KEY_TTL"],
        ge=1,
        description="Seconds the original's Redis keys of nodes and ended tasks live (backend.redis.seed_key_ttl_s); "
        "Skalds' own leases expire after node.lease_ttl_s",
    )
    kafka_host: str | None = Field(None, description="Kafka host; any host given means the real servers")
    kafka_port: int = SEED_DEFAULTS["KAFKA_PORT"]
    kafka_username: str | None = None
    kafka_password: str | None = None
    kafka_topic_partitions: int | None = Field(
        None, ge=1, description="Partitions of the topics Skalds creates (None: backend.kafka.partitions)"
    )
    kafka_replication_factor: int | None = Field(
        None, ge=1, description="Replicas of the topics Skalds creates (None: backend.kafka.replication_factor)"
    )
    mongo_host: str | None = Field(None, description="MongoDB connection string; any host given means the real servers")
    db_name: str = SEED_DEFAULTS["DB_NAME"]
    data_dir: str = Field("./.skalds", description="Where the embedded backends keep their files (Skalds only)")

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        """Drop None arguments (the seed's "use the default") and fill what is missing from the
        environment, by each field's upper-case name."""
        if not isinstance(data, dict):
            return data
        given = {key: value for key, value in data.items() if value is not None}
        env = environment()
        for field in cls.model_fields:
            name = field.upper()
            seed_variable = name in SEED_DEFAULTS or name == "SKALD_ID"
            if seed_variable and field not in given and name in env:
                given[field] = convert(name, env[name], SEED_DEFAULTS.get(name, ""))
        return given

    @property
    def distributed(self) -> bool:
        """True when any server is named: then all three backends are the real ones."""
        return any((self.redis_host, self.kafka_host, self.mongo_host))

    def overrides(self) -> list[str]:
        """The Hydra overrides of ``conf/`` this config stands for: the config groups (mode,
        backend, dispatch) it selects."""
        return []

    def conf_values(self) -> dict[str, Any]:
        """The keys to set once ``conf/`` is composed. Set after composing, so ids, paths,
        connection strings and passwords need no override quoting."""
        values: dict[str, Any] = {"log_level": std_level(self.log_level), "data_dir": self.data_dir}
        if not self.distributed:
            return values
        values.update(
            {
                "backend.kafka.bootstrap_servers": f"{self.kafka_host or 'localhost'}:{self.kafka_port}",
                "backend.kafka.username": self.kafka_username,
                "backend.kafka.password": self.kafka_password,
                "backend.redis.host": self.redis_host or "localhost",
                "backend.redis.port": self.redis_port,
                "backend.redis.password": self.redis_password,
                "backend.redis.seed_key_ttl_s": self.redis_key_ttl,
                "backend.mongo.uri": self.mongo_host or "mongodb://localhost:27017",
                "backend.mongo.db_name": self.db_name,
            }
        )
        if self.kafka_topic_partitions is not None:
            values["backend.kafka.partitions"] = self.kafka_topic_partitions
        if self.kafka_replication_factor is not None:
            values["backend.kafka.replication_factor"] = self.kafka_replication_factor
        return values

    def composed(self) -> DictConfig:
        """``conf/`` composed with :meth:`overrides` and :meth:`conf_values` set, as
        ``python -m skalds`` would compose it (checked by
        :func:`skalds.settings.seed_settings`). ``.env`` feeds the environment first (as the
        CLI does), so ``${oc.env:...}`` keys see it too."""
        from hydra import compose, initialize_config_dir
        from omegaconf import OmegaConf

        from skalds.config.env import load_dotenv
        from skalds.config.paths import config_dir

        load_dotenv()
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(config_name="config", overrides=self.overrides())
        for key, value in self.conf_values().items():
            OmegaConf.update(cfg, key, value)
        return cfg
