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
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match=r"node\.heartbeat_interval_s"):
        compose_config(["node.heartbeat_interval_s=soon"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("controller.port=99999", r"controller\.port: must be <= 65535 \(got 99999\)"),
        ("node.capacity=0", r"node\.capacity: must be >= 1 \(got 0\)"),
        ("node.lease_renew_interval_s=2", r"node\.lease_renew_interval_s: must be below 0\.5 x node\.lease_ttl_s"),
        ("node.heartbeat_timeout_s=0.5", r"node\.heartbeat_interval_s: must be below node\.heartbeat_timeout_s"),
    ],
)
def test_every_range_is_checked_before_anything_starts(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(compose_config([override]))


def test_the_readme_table_is_the_schema() -> None:
    from skalds.config.schema import markdown_table

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert markdown_table() in readme, "README's configuration table: python -m skalds.config.schema"


def test_composed_defaults_are_the_schemas_defaults() -> None:
    from omegaconf import OmegaConf

    from skalds.config.schema import rows

    cfg = compose_config([])
    for key, default, _ in rows():
        value = OmegaConf.select(cfg, key)
        shown = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        if key != "log_level":  # from the LOG_LEVEL variable when set
            assert shown == default, key


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


def test_a_class_may_give_its_path_and_retry_policy_in_the_long_form(tmp_path: Path) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(
        "name: p\n"
        "classes:\n"
        "  MyWorker: skalds.workers.demo:MyWorker\n"
        "  CountdownWorker: {path: skalds.workers.demo:CountdownWorker, max_retries: 0, retry_backoff_s: 2}\n"
    )
    settings = load_settings(compose_config([f"reload.pool_file={pool}"]))
    assert settings.pool_classes == {
        "MyWorker": "skalds.workers.demo:MyWorker",
        "CountdownWorker": "skalds.workers.demo:CountdownWorker",
    }
    assert settings.pool_retries == {"CountdownWorker": {"max_retries": 0, "retry_backoff_s": 2.0}}


def test_a_bad_class_entry_names_the_class_and_its_key() -> None:
    with pytest.raises(ConfigError, match=r"workers\.classes\.MyWorker\.max_retries"):
        load_settings(
            compose_config(["+workers.classes.MyWorker={path: skalds.workers.demo:MyWorker, max_retries: -2}"])
        )
