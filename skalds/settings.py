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

from omegaconf import DictConfig, OmegaConf

from skalds.controller.monitor import MonitorSettings
from skalds.errors import ConfigError
from skalds.node.agent import NodeSettings
from skalds.node.supervisor import SupervisorSettings

MODES = ("standalone", "controller", "node", "edge", "bench")


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
    source: str = "conf/config.yaml"


def _get(cfg: DictConfig, key: str, kind: type, where: str, *, minimum: float | None = None) -> Any:
    value = OmegaConf.select(cfg, key, throw_on_missing=False)
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
    return value


def load_settings(cfg: DictConfig) -> Settings:
    """Check the composed config and build :class:`Settings`.

    Raises:
        ConfigError: a key is missing or wrong; the message names it and its file.
    """
    main = "conf/config.yaml"
    mode = _get(cfg, "mode", str, main)
    if mode not in MODES:
        raise ConfigError(f"mode: unknown mode {mode!r}; known: {', '.join(MODES)} (conf/mode/*.yaml)", key="mode")
    pool_file = f"conf/workers/{OmegaConf.select(cfg, 'workers.name', default='?')}.yaml"
    classes = OmegaConf.select(cfg, "workers.classes", default=None)
    if classes is None or not isinstance(classes, DictConfig):
        raise ConfigError(
            f"workers.classes: missing or not a mapping of className -> import path (in {pool_file})",
            key="workers.classes",
        )
    pool_classes = {str(k): str(v) for k, v in OmegaConf.to_container(classes).items()}  # type: ignore[union-attr]
    supervision = SupervisorSettings(
        heartbeat_interval_s=_get(cfg, "node.heartbeat_interval_s", float, main, minimum=0.01),
        heartbeat_timeout_s=_get(cfg, "node.heartbeat_timeout_s", float, main, minimum=0.1),
        cancel_grace_s=_get(cfg, "node.cancel_grace_s", float, main, minimum=0),
        terminate_grace_s=_get(cfg, "node.terminate_grace_s", float, main, minimum=0),
        log_level=str(cfg.get("log_level", "INFO")).upper(),
    )
    node_id = OmegaConf.select(cfg, "node.id", default=None) or socket.gethostname()
    labels = OmegaConf.select(cfg, "node.labels", default=None)
    node = NodeSettings(
        id=str(node_id),
        mode="edge" if mode == "edge" else "node",
        capacity=_get(cfg, "node.capacity", int, main, minimum=1),
        labels={str(k): str(v) for k, v in (OmegaConf.to_container(labels) or {}).items()} if labels else {},  # type: ignore[union-attr]
        lease_ttl_s=_get(cfg, "node.lease_ttl_s", float, main, minimum=0.1),
        max_retries=_get(cfg, "node.max_retries", int, main, minimum=0),
        supervision=supervision,
    )
    monitor = MonitorSettings(
        check_interval_s=_get(cfg, "monitor.check_interval_s", float, main, minimum=0.01),
        lease_ttl_s=node.lease_ttl_s,
        max_retries=node.max_retries,
    )
    backend = OmegaConf.to_container(cfg.backend, resolve=True) if "backend" in cfg else None
    if not isinstance(backend, dict) or "kind" not in backend:
        raise ConfigError(
            "backend.kind: missing (pick a backend: backend=local or backend=distributed)", key="backend.kind"
        )
    return Settings(
        mode=mode,
        data_dir=Path(_get(cfg, "data_dir", str, main)),
        log_level=supervision.log_level,
        host=_get(cfg, "controller.host", str, main),
        port=_get(cfg, "controller.port", int, main, minimum=0),
        node=node,
        monitor=monitor,
        dispatch_policy=_get(cfg, "dispatch.policy", str, "conf/dispatch/*.yaml"),
        backend=backend,
        pool_name=str(OmegaConf.select(cfg, "workers.name", default="?")),
        pool_classes=pool_classes,
    )
