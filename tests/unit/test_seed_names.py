"""Every name the seed's docs and scripts import imports, and behaves as there."""

from __future__ import annotations

import importlib
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from skalds.config._enum import (
    DispatcherStrategyEnum,
    LogLevelEnum,
    SkaldEnvEnum,
    SkaldModeEnum,
    SystemControllerModeEnum,
)
from skalds.config.skald_config import SkaldConfig
from skalds.config.system_controller_config import SystemControllerConfig
from skalds.config.systemconfig import SystemConfig
from skalds.errors import ConfigError
from skalds.model.task import ModeEnum, TaskWorkerSimpleMapList
from skalds.settings import seed_settings

SEED_IMPORTS = {
    "skalds": ["Skald", "Skalds", "SkaldConfig", "Task", "TaskEvent"],
    "skalds.skald": ["Skald"],
    "skalds.config.skald_config": ["SkaldConfig"],
    "skalds.config.system_controller_config": ["SystemControllerConfig"],
    "skalds.config.systemconfig": ["SystemConfig"],
    "skalds.config._enum": [
        "SystemControllerModeEnum",
        "DispatcherStrategyEnum",
        "LogLevelEnum",
        "SkaldModeEnum",
        "SkaldEnvEnum",
    ],
    "skalds.system_controller": ["SystemController"],
    "skalds.system_controller.main": ["SystemController"],
    "skalds.worker.baseclass": [
        "BaseTaskWorker",
        "run_before_handler",
        "run_main_handler",
        "run_after_handler",
        "release_handler",
        "update_event_handler",
    ],
    "skalds.utils.logging": ["logger", "init_logger"],
    "skalds.model.task": ["Task", "ModeEnum", "TaskLifecycleStatus", "TaskWorkerSimpleMap", "TaskWorkerSimpleMapList"],
    "skalds.model.event": ["TaskEvent", "UpdateTaskWorkerEvent"],
    "skalds.proxy.kafka": ["KafkaConfig", "KafkaProxy", "KafkaTopic", "KafkaAdmin"],
    "skalds.proxy.mongo": ["MongoConfig", "MongoProxy"],
    "skalds.proxy.redis": ["RedisProxy", "RedisConfig", "RedisKey"],
    "skalds.repository.repository": ["TaskRepository"],
}

#: The seed's environment variables a SkaldConfig reads, and the field each fills.
SEED_ENV = {
    "SKALD_ID": ("skald_id", "from-env", "from-env"),
    "SKALD_MODE": ("skald_mode", "EDGE", SkaldModeEnum.EDGE),
    "REDIS_HOST": ("redis_host", "redis.example", "redis.example"),
    "REDIS_PORT": ("redis_port", "7000", 7000),
    "REDIS_PASSWORD": ("redis_password", "r-secret", "r-secret"),
    "KAFKA_HOST": ("kafka_host", "kafka.example", "kafka.example"),
    "KAFKA_PORT": ("kafka_port", "19092", 19092),
    "KAFKA_USERNAME": ("kafka_username", "k-user", "k-user"),
    "KAFKA_PASSWORD": ("kafka_password", "k-secret", "k-secret"),
    "MONGO_HOST": ("mongo_host", "mongodb://m:1/", "mongodb://m:1/"),
    "DB_NAME": ("db_name", "env-db", "env-db"),
    "LOG_LEVEL": ("log_level", "debug", LogLevelEnum.DEBUG),
    "YAML_FILE": ("yaml_file", "tasks.yml", "tasks.yml"),
    "KAFKA_TOPIC_PARTITIONS": ("kafka_topic_partitions", "2", 2),
    "KAFKA_REPLICATION_FACTOR": ("kafka_replication_factor", "1", 1),
}


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No seed variable set and no .env file: a working directory of its own."""
    monkeypatch.chdir(tmp_path)
    for name in [*SEED_ENV, "SYSTEM_CONTROLLER_MODE", "SYSTEM_CONTROLLER_PORT", "DISPATCHER_STRATEGY"]:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Put the root logger's handlers and level back after a test that configures logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.parametrize(("module", "name"), [(m, n) for m, names in SEED_IMPORTS.items() for n in names])
def test_every_name_the_seed_imports_is_there(module: str, name: str) -> None:
    assert getattr(importlib.import_module(module), name) is not None


def test_skald_is_skalds_and_importing_skalds_loads_no_web_stack() -> None:
    from skalds import Skald, Skalds

    assert Skald is Skalds
    code = "import sys, skalds, skalds.worker.baseclass; print('fastapi' in sys.modules, 'hydra' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_enums_have_the_seeds_values_and_take_any_case() -> None:
    assert LogLevelEnum.list() == ["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]
    assert SkaldEnvEnum.list() == ["DEV", "PRODUCTION"]
    assert SkaldModeEnum.list() == ["edge", "node", "single_process"]
    assert SystemControllerModeEnum.list() == ["CONTROLLER", "MONITOR", "DISPATCHER"]
    assert DispatcherStrategyEnum.list() == ["LEAST_TASKS", "ROUND_ROBIN", "RANDOM"]
    assert SkaldModeEnum("EDGE") is SkaldModeEnum.EDGE
    assert SkaldModeEnum("Single_Process") is SkaldModeEnum.SINGLE_PROCESS
    assert SystemControllerModeEnum("monitor") is SystemControllerModeEnum.MONITOR
    assert DispatcherStrategyEnum("least_tasks") is DispatcherStrategyEnum.LEAST_TASKS
    assert LogLevelEnum(" trace ") is LogLevelEnum.TRACE
    assert SkaldModeEnum.NODE == "node"
    with pytest.raises(ValueError):
        SkaldModeEnum("master")


def test_mode_enum_is_the_task_mode_with_its_list() -> None:
    from skalds.core.task import TaskMode

    assert ModeEnum is TaskMode
    assert ModeEnum.list() == {"Active", "Passive", "PassiveProcess"}
    assert ModeEnum("Active") is ModeEnum.ACTIVE


def test_update_task_worker_event_is_the_core_one() -> None:
    from skalds.core.events import UpdateTaskWorkerEvent as Core
    from skalds.model.event import UpdateTaskWorkerEvent

    assert UpdateTaskWorkerEvent is Core


def test_skald_config_reads_the_seeds_environment_when_an_argument_is_missing(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, (_, value, _) in SEED_ENV.items():
        monkeypatch.setenv(name, value)
    config = SkaldConfig()
    assert {field: getattr(config, field) for field, _, _ in SEED_ENV.values()} == {
        field: expected for field, _, expected in SEED_ENV.values()
    }
    assert SkaldConfig(redis_port=6380, skald_id=None).redis_port == 6380, "an argument wins over the environment"
    assert SkaldConfig(skald_id=None).skald_id == "from-env", "None means: the environment's (the seed's rule)"


def test_skald_config_accepts_every_argument_of_the_seed(clean_env: Path) -> None:
    config = SkaldConfig(
        skald_id="s1",
        skald_env="PRODUCTION",
        skald_mode="single_process",
        log_level="SUCCESS",
        log_path="logs",
        log_retention="3 days",
        log_rotation_mb="10",
        log_split_with_worker_id=True,
        redis_host=None,
        redis_port=6379,
        redis_password="",
        redis_sync_period=3,
        redis_key_ttl=3600,
        kafka_host=None,
        kafka_port=9092,
        kafka_username="",
        kafka_password="",
        kafka_topic_partitions=6,
        kafka_replication_factor=3,
        mongo_host=None,
        db_name="skalds",
        task_worker_retry=-1,
        yaml_file="all_workers.yml",
    )
    assert config.skald_mode is SkaldModeEnum.SINGLE_PROCESS
    assert not config.distributed
    assert config.conf_values()["log_level"] == "INFO", "SUCCESS logs at INFO"
    with pytest.raises(ValidationError, match="mongo_port"):
        SkaldConfig(mongo_port=27017)  # type: ignore[call-arg]


def test_a_dotenv_file_is_read_when_the_config_is_built_and_the_environment_wins(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SkaldConfig().redis_host is None
    (clean_env / ".env").write_text("REDIS_HOST=from-file\nDB_NAME=file-db\nKAFKA_HOST=\n")
    monkeypatch.setenv("DB_NAME", "env-db")
    config = SkaldConfig()
    assert (config.redis_host, config.db_name, config.kafka_host) == ("from-file", "env-db", None)
    assert SystemConfig.REDIS_HOST == "from-file"


def test_no_host_means_the_embedded_backends_and_any_host_the_real_ones(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = seed_settings(SkaldConfig(skald_id="solo"))
    assert (settings.mode, settings.backend["kind"], settings.node.id) == ("standalone", "local", "solo")
    settings = seed_settings(SkaldConfig(skald_mode="edge", skald_id="lone"))
    assert (settings.mode, settings.backend["kind"], settings.node.mode) == ("edge", "local", "edge"), "no controller"
    monkeypatch.setenv("KAFKA_HOST", "kafka.example")
    settings = seed_settings(SkaldConfig(skald_mode="edge", kafka_topic_partitions=2, task_worker_retry=0))
    assert (settings.mode, settings.backend["kind"]) == ("edge", "distributed")
    assert settings.backend["kafka"]["bootstrap_servers"] == "kafka.example:9092"
    assert settings.backend["kafka"]["partitions"] == 2
    assert settings.backend["redis"]["host"] == "localhost"
    assert settings.node.retry.max_retries == 0


def test_without_skald_id_each_process_draws_its_own(clean_env: Path) -> None:
    ids = {SkaldConfig().skald_id, SkaldConfig().skald_id, SystemConfig.SKALD_ID}
    assert len(ids) == 1, "one id per process"
    assert re.fullmatch(r"skalds-[0-9a-f]{5}", ids.pop())
    code = "from skalds.config.skald_config import SkaldConfig; print(SkaldConfig().skald_id)"
    runs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout for _ in "ab"
    }
    assert len(runs) == 2, "two processes, two ids"


def test_system_config_reads_the_environment_on_access_with_the_seeds_defaults(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (SystemConfig.REDIS_HOST, SystemConfig.KAFKA_PORT, SystemConfig.DISPATCHER_STRATEGY) == (
        "localhost",
        9092,
        "LEAST_TASKS",
    )
    monkeypatch.setenv("KAFKA_PORT", "19092")
    monkeypatch.setenv("LOG_SPLIT_WITH_WORKER_ID", "yes")
    assert SystemConfig.KAFKA_PORT == 19092
    assert SystemConfig().LOG_SPLIT_WITH_WORKER_ID is True
    monkeypatch.setenv("REDIS_PORT", "six")
    with pytest.raises(ConfigError, match="REDIS_PORT"):
        _ = SystemConfig.REDIS_PORT
    with pytest.raises(AttributeError):
        _ = SystemConfig.NO_SUCH_VARIABLE


def test_system_controller_config_maps_every_mode_onto_the_whole_controller(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYSTEM_CONTROLLER_PORT", "18000")
    monkeypatch.setenv("DISPATCHER_STRATEGY", "random")
    for mode in ("CONTROLLER", "monitor", "Dispatcher"):
        config = SystemControllerConfig(system_controller_mode=mode, system_controller_host="127.0.0.1")
        settings = seed_settings(config)
        assert (settings.mode, settings.backend["kind"], settings.port) == ("controller", "local", 18000)
        assert settings.dispatch_policy == "random"
        assert settings.pool_file is None
    monkeypatch.setenv("MONGO_HOST", "mongodb://m:1/")
    settings = seed_settings(SystemControllerConfig(dispatcher_strategy="ROUND_ROBIN"))
    assert (settings.backend["kind"], settings.backend["mongo"]["uri"]) == ("distributed", "mongodb://m:1/")
    assert (settings.host, settings.dispatch_policy) == ("0.0.0.0", "round_robin")


def test_task_worker_simple_map_list_keeps_one_entry_per_task() -> None:
    tasks = TaskWorkerSimpleMapList()
    tasks.timestamp = 0
    tasks.push("a", "A")
    tasks.push("a", "A")
    tasks.push("b", "B")
    tasks.push("c", "C")
    assert [(t.id, t.class_name) for t in tasks.tasks] == [("a", "A"), ("b", "B"), ("c", "C")]
    assert tasks.existed_task_ids == ["a", "b", "c"]
    assert tasks.timestamp > 0
    tasks.pop_by_task_id("b")
    tasks.pop_by_task_id("nope")
    assert tasks.existed_task_ids == ["a", "c"]
    tasks.keep_specify_tasks(["c", "d"])
    assert [t.id for t in tasks.tasks] == tasks.existed_task_ids == ["c"]
    tasks.timestamp = 0
    tasks.update_timestamp()
    assert tasks.timestamp > 0
    dumped = tasks.model_dump()
    assert dumped["tasks"] == [{"id": "c", "class_name": "C"}]
    assert TaskWorkerSimpleMapList.model_validate(
        {"tasks": [{"id": "x", "className": "X"}], "existedTaskIds": ["x"]}
    ).existed_task_ids == ["x"]
    tasks.clear()
    assert (tasks.tasks, tasks.existed_task_ids) == ([], [])


def test_redis_key_gives_the_seeds_key_names() -> None:
    from skalds.proxy.redis import RedisKey

    assert (RedisKey.SKALD_LIST_HASH, RedisKey.SKALD_MODE_LIST_HASH) == ("skalds:hash", "skalds:mode:hash")
    assert RedisKey.skald_heartbeat("s") == "skalds:s:heartbeat"
    assert RedisKey.skald_all_task("s") == "skalds:s:all-task"
    assert RedisKey.skald_allow_task_class_name("s") == "skalds:s:allow-task-class-name"
    assert RedisKey.task_heartbeat("t") == "task:t:heartbeat"
    assert RedisKey.task_exception("t") == "task:t:exception"
    assert RedisKey.task_has_error("t") == "task:t:has-error"


def test_init_logger_logs_to_stderr_and_a_rotated_file(tmp_path: Path, root_logging: None) -> None:
    from skalds.utils.logging import init_logger, logger

    named = init_logger("my-skald", "TRACE", log_path=tmp_path / "logs", process_id="p1", rotation="1MB")
    assert named.name == "my-skald"
    assert logging.getLogger().level == logging.DEBUG, "TRACE logs at DEBUG"
    logger.debug("hello from a worker")
    log_file = tmp_path / "logs" / "my-skald.log"
    assert "[p1]: hello from a worker" in log_file.read_text()
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, logging.handlers.RotatingFileHandler))
    assert handler.maxBytes == 1024 * 1024
    with pytest.raises(ValueError, match="rotation"):
        init_logger("x", rotation="daily")
