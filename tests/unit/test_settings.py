"""Config errors name the key and the file; .env feeds ${oc.env:...}."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skalds.backends.factory import build_backends
from skalds.config.env import load_dotenv
from skalds.errors import ConfigError
from skalds.settings import load_settings
from skalds.testing import compose_config


def test_a_bad_value_names_its_key() -> None:
    with pytest.raises(ConfigError, match=r"node\.heartbeat_interval_s: expected float, got 'soon'"):
        load_settings(compose_config(["node.heartbeat_interval_s=soon"]))


def test_the_pool_decides_capacity_unless_the_command_line_does() -> None:
    assert load_settings(compose_config(["workers=camera_pool"])).node.capacity == 32
    assert load_settings(compose_config(["workers=camera_pool", "node.capacity=4"])).node.capacity == 4
    assert load_settings(compose_config(["workers=camera_pool"])).node.labels == {"pool": "camera"}


def test_an_unknown_backend_key_names_the_key_and_the_file() -> None:
    with pytest.raises(ConfigError, match=r"backend\.redis\.hots: unknown key.*conf/backend/distributed\.yaml"):
        build_backends({"kind": "distributed", "kafka": {}, "redis": {"hots": "x"}, "mongo": {}})


def test_a_missing_pool_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"reload\.pool_file"):
        load_settings(compose_config([f"reload.pool_file={tmp_path / 'nope.yaml'}"]))


def test_dotenv_fills_the_environment_without_overriding_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text("# servers\nREDIS_HOST=redis.example\nexport KAFKA_PORT='19092'\nDB_NAME=from-file\n")
    monkeypatch.setenv("DB_NAME", "from-env")
    for name in ("REDIS_HOST", "KAFKA_PORT"):  # set then unset: monkeypatch restores both at teardown
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    load_dotenv(env)
    assert (os.environ["REDIS_HOST"], os.environ["KAFKA_PORT"], os.environ["DB_NAME"]) == (
        "redis.example",
        "19092",
        "from-env",
    )
    backend = load_settings(compose_config(["+mode=node"])).backend
    assert backend["redis"]["host"] == "redis.example"
    assert backend["kafka"]["bootstrap_servers"].endswith(":19092")
    assert backend["mongo"]["db_name"] == "from-env"
