"""Typed settings read from the composed Hydra config, with errors that name the key.

Hydra composes ``conf/`` against the schema of :mod:`skalds.config.schema` (which checks types);
this module checks every range the schema declares and the relations between keys, and turns
the tree into the small settings dataclasses the components take, so a wrong value fails at
start with "node.capacity: must be >= 1 (got 0)" rather than deep inside a thread.
"""

from __future__ import annotations

import dataclasses
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from omegaconf import DictConfig, OmegaConf

from skalds.config.paths import config_dir
from skalds.config.schema import (
    DEFAULT_CAPACITY,
    ControllerConf,
    DispatchConf,
    MonitorConf,
    NodeConf,
    ReloadConf,
    split_keys,
)
from skalds.controller.dispatcher import DispatcherSettings
from skalds.controller.leadership import LeadSettings
from skalds.controller.monitor import MonitorSettings
from skalds.core.dispatch import POLICIES
from skalds.core.lifecycle import RetryPolicy
from skalds.core.requirements import check_amounts
from skalds.core.scheduler import RoundOptions
from skalds.errors import ConfigError, ValidationFailed
from skalds.node.agent import NodeSettings
from skalds.node.lease import LeaseSettings
from skalds.node.output import OutputSettings
from skalds.node.supervisor import SupervisorSettings
from skalds.reload.pool import WorkerPoolFile, class_entries

if TYPE_CHECKING:
    from skalds.config.cluster_config import ClusterConfig

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
    #: className -> import path, or -> ``{path, resources, requiredLabels, preferredLabels}``.
    pool_classes: dict[str, Any]
    #: Retry settings of the pool's classes that set their own (task field names).
    pool_retries: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    pool_file: Path | None = None
    tasks_file: Path | None = None
    reload_watch: bool = True
    reload_debounce_s: float = ReloadConf.debounce_s
    max_request_bytes: int = ControllerConf.max_request_bytes
    max_event_bytes: int = ControllerConf.max_event_bytes
    dispatch: DispatcherSettings = dataclasses.field(default_factory=DispatcherSettings)
    max_batch: int = ControllerConf.max_batch
    #: This controller's name among several, and the timings of the lease the leader holds.
    controller_id: str = "controller"
    lead: LeadSettings = dataclasses.field(default_factory=LeadSettings)
    #: Access: operator and viewer keys, and the hosts and origins accepted (raw config values).
    access: dict[str, Any] = dataclasses.field(default_factory=dict)


def _section(cfg: DictConfig, name: str, schema: type) -> Any:
    """The ``name`` section as its schema dataclass, every declared range checked."""
    values = OmegaConf.to_container(cfg.get(name) or {}, resolve=True)
    known = {f.name for f in dataclasses.fields(schema)}
    section = schema(**{k: v for k, v in (values or {}).items() if k in known})  # type: ignore[union-attr]
    for f in dataclasses.fields(schema):
        value = getattr(section, f.name)
        low, high = f.metadata.get("min"), f.metadata.get("max")
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if low is not None and value < low:
            raise ConfigError(
                f"{name}.{f.name}: must be >= {low:g} (got {value}) ({MAIN} or the command line)",
                key=f"{name}.{f.name}",
            )
        if high is not None and value > high:
            raise ConfigError(
                f"{name}.{f.name}: must be <= {high:g} (got {value}) ({MAIN} or the command line)",
                key=f"{name}.{f.name}",
            )
    return section


def _below(key: str, value: float, limit_key: str, limit: float, *, share: float = 1.0) -> None:
    """``value`` must stay under ``share`` of another key's value (``limit``)."""
    if value > limit * share or (share == 1.0 and value == limit):
        what = limit_key if share == 1.0 else f"{share:g} x {limit_key}"
        raise ConfigError(f"{key}: must be below {what} (got {value:g}, {limit_key} is {limit:g})", key=key)


def load_settings(cfg: DictConfig) -> Settings:
    """Check the composed config and build :class:`Settings`.

    Raises:
        ConfigError: a key is missing or wrong; the message names it and its file.
    """
    mode = str(cfg.get("mode") or "standalone")
    if mode not in MODES:
        raise ConfigError(f"mode: unknown mode {mode!r}; known: {', '.join(MODES)} (conf/mode/*.yaml)", key="mode")
    controller: ControllerConf = _section(cfg, "controller", ControllerConf)
    node_conf: NodeConf = _section(cfg, "node", NodeConf)
    monitor_conf: MonitorConf = _section(cfg, "monitor", MonitorConf)
    reload_conf: ReloadConf = _section(cfg, "reload", ReloadConf)
    ttl = node_conf.lease_ttl_s
    _below("node.lease_renew_interval_s", node_conf.lease_renew_interval_s, "node.lease_ttl_s", ttl, share=0.5)
    _below("node.fence_margin_s", node_conf.fence_margin_s, "node.lease_ttl_s", ttl, share=0.5)
    _below(
        "node.heartbeat_interval_s",
        node_conf.heartbeat_interval_s,
        "node.heartbeat_timeout_s",
        node_conf.heartbeat_timeout_s,
    )
    pool, pool_file = _pool(cfg, reload_conf)
    classes = pool.get("classes")
    if not isinstance(classes, dict) or not classes:
        raise ConfigError(
            f"workers.classes: missing or empty; map className -> import path (in {pool_file})", key="workers.classes"
        )
    try:
        entries = class_entries(classes)
    except ValidationFailed as exc:
        first = exc.detail["errors"][0]
        raise ConfigError(
            f"workers.classes.{first['field']}: {first['message']} (in {pool_file})",
            key=f"workers.classes.{first['field']}",
        ) from exc
    backend = OmegaConf.to_container(cfg.backend, resolve=True) if cfg.get("backend") else None
    if not isinstance(backend, dict) or "kind" not in backend:
        raise ConfigError("backend.kind: missing (pick one: backend=local or backend=distributed)", key="backend.kind")
    log_level = str(cfg.get("log_level") or "INFO").upper()
    capacity = node_conf.capacity or pool.get("capacity") or DEFAULT_CAPACITY
    if not isinstance(capacity, int) or capacity < 1:
        raise ConfigError(
            f"capacity: must be an integer >= 1 (got {capacity!r}) (in {pool_file})", key="workers.capacity"
        )
    labels = {**(pool.get("labels") or {}), **(node_conf.labels or {})}
    try:
        offers = check_amounts({**(pool.get("offers") or {}), **(node_conf.offers or {})}, "offers")
    except ValueError as exc:
        raise ConfigError(f"node.offers / the pool's offers: {exc} (in {pool_file} or the command line)") from exc
    retry = RetryPolicy(node_conf.max_retries, node_conf.retry_backoff_s, node_conf.retry_backoff_max_s)
    node = NodeSettings(
        id=str(node_conf.id or socket.gethostname()),
        mode="edge" if mode == "edge" else "node",
        capacity=capacity,
        labels={str(k): str(v) for k, v in labels.items()},
        offers=offers,
        lease=LeaseSettings(node_conf.lease_ttl_s, node_conf.lease_renew_interval_s, node_conf.fence_margin_s),
        self_fence=backend["kind"] == "distributed",
        retry=retry,
        fence_check_interval_s=node_conf.fence_check_interval_s,
        supervision=SupervisorSettings(
            heartbeat_interval_s=node_conf.heartbeat_interval_s,
            heartbeat_timeout_s=node_conf.heartbeat_timeout_s,
            cancel_grace_s=node_conf.cancel_grace_s,
            terminate_grace_s=node_conf.terminate_grace_s,
            log_level=log_level,
            prefork=node_conf.prefork,
        ),
        output=OutputSettings(
            keep_lines=node_conf.output_keep_lines,
            retention_s=node_conf.output_retention_s,
            echo=node_conf.output_echo,
        ),
    )
    monitor = MonitorSettings(
        check_interval_s=monitor_conf.check_interval_s,
        lease_ttl_s=node_conf.lease_ttl_s,
        sweep_interval_s=monitor_conf.sweep_interval_s,
        retry=retry,
    )
    dispatch_conf: DispatchConf = _section(cfg, "dispatch", DispatchConf)
    policy = dispatch_conf.policy
    if policy not in POLICIES:
        raise ConfigError(
            f"dispatch.policy: unknown policy {policy!r}; known: {', '.join(sorted(POLICIES))} (conf/dispatch/)",
            key="dispatch.policy",
        )
    dispatch = DispatcherSettings(
        round=RoundOptions(aging_s=dispatch_conf.aging_s, sticky=dispatch_conf.sticky),
        preempt=dispatch_conf.preempt,
        spread_label=dispatch_conf.spread_label,
        reason_refresh_s=dispatch_conf.reason_refresh_s,
    )
    tasks_file = pool.get("tasks_file")
    return Settings(
        mode=mode,
        data_dir=Path(str(cfg.get("data_dir") or "./.skalds")),
        log_level=log_level,
        host=controller.host,
        port=controller.port,
        node=node,
        monitor=monitor,
        dispatch_policy=str(policy),
        backend={str(k): v for k, v in backend.items()},
        pool_name=str(pool.get("name", "?")),
        pool_classes={name: e.catalog_entry() for name, e in entries.items()},
        pool_retries={name: e.retry_settings() for name, e in entries.items() if e.retry_settings()},
        pool_file=pool_file,
        tasks_file=Path(tasks_file) if tasks_file else None,
        reload_watch=reload_conf.watch,
        reload_debounce_s=reload_conf.debounce_s,
        max_request_bytes=controller.max_request_bytes,
        max_event_bytes=controller.max_event_bytes,
        dispatch=dispatch,
        max_batch=controller.max_batch,
        controller_id=str(controller.id or f"{socket.gethostname()}-{controller.port}"),
        lead=LeadSettings(
            ttl_s=controller.lead_ttl_s,
            renew_interval_s=min(controller.lead_renew_interval_s, controller.lead_ttl_s / 3),
            margin_s=min(0.25, controller.lead_ttl_s / 10),
        ),
        access={
            "operator_keys": controller.api_keys,
            "viewer_keys": controller.viewer_keys,
            "allowed_hosts": controller.allowed_hosts,
            "allowed_origins": [*split_keys(controller.allowed_origins), *split_keys(controller.cors_origins)],
            "cors_origins": split_keys(controller.cors_origins),
        },
    )


def _pool(cfg: DictConfig, reload: ReloadConf) -> tuple[dict[str, Any], Path | None]:
    """The selected worker pool and its file: ``reload.pool_file`` when set (read from
    there), else the composed ``workers`` group (from ``conf/workers/<name>.yaml``)."""
    if reload.pool_file:
        path = Path(reload.pool_file)
        try:
            data = yaml.safe_load(path.read_text()) or {}
            WorkerPoolFile.model_validate(data)
        except (OSError, yaml.YAMLError, ValueError) as exc:
            raise ConfigError(
                f"reload.pool_file: {path} is not a readable worker pool file: {exc}", key="reload.pool_file"
            ) from exc
        return data, path
    if not cfg.get("workers"):
        raise ConfigError("workers: no worker pool selected (workers=<name>, a file in conf/workers/)", key="workers")
    pool = OmegaConf.to_container(cfg.workers, resolve=True)
    if not isinstance(pool, dict):
        raise ConfigError("workers: the selected pool is not a mapping (conf/workers/*.yaml)", key="workers")
    path = Path(config_dir()) / "workers" / f"{pool.get('name')}.yaml"
    return {str(k): v for k, v in pool.items()}, path if path.is_file() else None


def seed_settings(config: ClusterConfig) -> Settings:
    """The settings of a process configured the seed's way (``SkaldConfig``,
    ``SystemControllerConfig``): its composed config, checked. No pool file: a process
    configured from code declares its tasks itself.

    Raises:
        ConfigError: a value is wrong; the message names the key.
    """
    return dataclasses.replace(load_settings(config.composed()), pool_file=None)
