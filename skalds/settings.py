"""Typed settings read from the composed Hydra config, with errors that name the key.

Hydra composes ``conf/``; this module checks the values Skalds relies on and turns them into
the small settings dataclasses the components take, so a wrong value fails at start with
"node.capacity: must be >= 1 (got 0)" rather than deep inside a thread.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from skalds.config.paths import config_dir
from skalds.controller.monitor import MonitorSettings
from skalds.core.lifecycle import RetryPolicy
from skalds.errors import ConfigError
from skalds.node.agent import NodeSettings
from skalds.node.lease import LeaseSettings
from skalds.node.supervisor import SupervisorSettings
from skalds.reload.pool import WorkerPoolFile

MODES = ("standalone", "controller", "node", "edge", "bench")
MAIN = "conf/config.yaml"


@dataclass(frozen=True)
class Settings:
    """Everything a Skalds process needs to start."""

    mode: str
    data_dir: Path
    log_level: str
    host: str
    port: int
    node: NodeSettings
    monitor: MonitorSettings
    dispatch_policy: str
    backend: dict[str, Any]
    pool_name: str
    pool_classes: dict[str, str]
    pool_file: Path | None = None
    tasks_file: Path | None = None
    reload_watch: bool = True
    reload_debounce_s: float = 0.05
    max_request_bytes: int = 1024 * 1024
    max_event_bytes: int = 256 * 1024


def _get(
    cfg: DictConfig,
    key: str,
    kind: type,
    where: str = MAIN,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Any:
    return _checked(
        key, OmegaConf.select(cfg, key, throw_on_missing=False), kind, where, minimum=minimum, maximum=maximum
    )


def _checked(
    key: str, value: Any, kind: type, where: str, *, minimum: float | None = None, maximum: float | None = None
) -> Any:
    if value is None:
        raise ConfigError(f"{key}: missing (set it in {where} or on the command line: {key}=...)", key=key)
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{key}: expected {kind.__name__}, got {value!r} (from {where} or the command line)", key=key
        ) from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{key}: must be >= {minimum} (got {value}) (from {where} or the command line)", key=key)
    if maximum is not None and value > maximum:
        raise ConfigError(f"{key}: must be <= {maximum} (got {value}) (from {where} or the command line)", key=key)
    return value


def load_settings(cfg: DictConfig) -> Settings:
    """Check the composed config and build :class:`Settings`.

    Raises:
        ConfigError: a key is missing or wrong; the message names it and its file.
    """
    mode = _get(cfg, "mode", str)
    if mode not in MODES:
        raise ConfigError(f"mode: unknown mode {mode!r}; known: {', '.join(MODES)} (conf/mode/*.yaml)", key="mode")
    pool, pool_file = _pool(cfg)
    classes = pool.get("classes")
    if not isinstance(classes, dict) or not classes:
        raise ConfigError(
            f"workers.classes: missing or empty; map className -> import path (in {pool_file})", key="workers.classes"
        )
    supervision = SupervisorSettings(
        heartbeat_interval_s=_get(cfg, "node.heartbeat_interval_s", float, minimum=0.01),
        heartbeat_timeout_s=_get(cfg, "node.heartbeat_timeout_s", float, minimum=0.1),
        cancel_grace_s=_get(cfg, "node.cancel_grace_s", float, minimum=0),
        terminate_grace_s=_get(cfg, "node.terminate_grace_s", float, minimum=0),
        log_level=str(cfg.get("log_level", "INFO")).upper(),
    )
    capacity = OmegaConf.select(cfg, "node.capacity", default=None)
    capacity_from = MAIN
    if capacity is None:  # null: the pool decides
        capacity, capacity_from = pool.get("capacity") or 16, f"{pool_file} (capacity)"
    node_labels = OmegaConf.to_container(cfg.node.labels) if cfg.node.get("labels") else {}
    labels = {**(pool.get("labels") or {}), **(node_labels or {})}  # type: ignore[dict-item]
    ttl = _get(cfg, "node.lease_ttl_s", float, minimum=0.1)
    lease = LeaseSettings(
        ttl_s=ttl,
        renew_interval_s=_get(cfg, "node.lease_renew_interval_s", float, minimum=0.01, maximum=ttl / 2),
        fence_margin_s=_get(cfg, "node.fence_margin_s", float, minimum=0.05, maximum=ttl / 2),
    )
    retry = RetryPolicy(
        max_retries=_get(cfg, "node.max_retries", int, minimum=0),
        backoff_base_s=_get(cfg, "node.retry_backoff_s", float, minimum=0),
        backoff_cap_s=_get(cfg, "node.retry_backoff_max_s", float, minimum=0),
    )
    backend = OmegaConf.to_container(cfg.backend, resolve=True) if "backend" in cfg else None
    if not isinstance(backend, dict) or "kind" not in backend:
        raise ConfigError("backend.kind: missing (pick one: backend=local or backend=distributed)", key="backend.kind")
    node = NodeSettings(
        id=str(OmegaConf.select(cfg, "node.id", default=None) or socket.gethostname()),
        mode="edge" if mode == "edge" else "node",
        capacity=_checked("node.capacity", capacity, int, capacity_from, minimum=1),
        labels={str(k): str(v) for k, v in labels.items()},
        lease=lease,
        self_fence=backend["kind"] == "distributed",
        retry=retry,
        fence_check_interval_s=_get(cfg, "node.fence_check_interval_s", float, minimum=0.1),
        supervision=supervision,
    )
    monitor = MonitorSettings(
        check_interval_s=_get(cfg, "monitor.check_interval_s", float, minimum=0.01),
        lease_ttl_s=ttl,
        retry=retry,
    )
    tasks_file = pool.get("tasks_file")
    return Settings(
        mode=mode,
        data_dir=Path(_get(cfg, "data_dir", str)),
        log_level=supervision.log_level,
        host=_get(cfg, "controller.host", str),
        port=_get(cfg, "controller.port", int, minimum=0, maximum=65535),
        node=node,
        monitor=monitor,
        dispatch_policy=_get(cfg, "dispatch.policy", str, "conf/dispatch/*.yaml"),
        backend={str(k): v for k, v in backend.items()},
        pool_name=str(pool.get("name", "?")),
        pool_classes={str(k): str(v) for k, v in classes.items()},
        pool_file=pool_file,
        tasks_file=Path(tasks_file) if tasks_file else None,
        reload_watch=bool(OmegaConf.select(cfg, "reload.watch", default=True)),
        reload_debounce_s=_get(cfg, "reload.debounce_s", float, minimum=0),
        max_request_bytes=_get(cfg, "controller.max_request_bytes", int, minimum=1024),
        max_event_bytes=_get(cfg, "controller.max_event_bytes", int, minimum=1024),
    )


def _pool(cfg: DictConfig) -> tuple[dict[str, Any], Path | None]:
    """The selected worker pool and its file: ``reload.pool_file`` when set (read from
    there), else the composed ``workers`` group (from ``conf/workers/<name>.yaml``)."""
    explicit = OmegaConf.select(cfg, "reload.pool_file", default=None)
    if explicit:
        path = Path(explicit)
        try:
            data = yaml.safe_load(path.read_text()) or {}
            WorkerPoolFile.model_validate(data)
        except (OSError, yaml.YAMLError, ValueError) as exc:
            raise ConfigError(
                f"reload.pool_file: {path} is not a readable worker pool file: {exc}", key="reload.pool_file"
            ) from exc
        return data, path
    if "workers" not in cfg:
        raise ConfigError("workers: no worker pool selected (workers=<name>, a file in conf/workers/)", key="workers")
    pool = OmegaConf.to_container(cfg.workers, resolve=True)
    if not isinstance(pool, dict):
        raise ConfigError("workers: the selected pool is not a mapping (conf/workers/*.yaml)", key="workers")
    path = Path(config_dir()) / "workers" / f"{pool.get('name')}.yaml"
    return {str(k): v for k, v in pool.items()}, path if path.is_file() else None
