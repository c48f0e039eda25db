"""Every setting of a Skalds process, once: its type, default, range and meaning.

These dataclasses are registered in Hydra's ConfigStore as the schema of ``conf/config.yaml``,
so Hydra checks types when it composes, ``--cfg job`` shows these defaults, ``--help`` and the
README's table list these meanings, and :mod:`skalds.settings` checks these ranges before
anything starts. Component settings (``NodeSettings``, ``LeaseSettings``...) take their
defaults from here too. ``python -m skalds.config.schema`` prints the README's table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from skalds.core.lifecycle import RetryPolicy

SCHEMA_NAME = "skalds_schema"
#: Worker processes per node when neither ``node.capacity`` nor the pool says.
DEFAULT_CAPACITY = 16


def setting(default: Any, help: str, *, min: float | None = None, max: float | None = None) -> Any:
    """A field with an immutable default, its meaning and optional range (checked by
    :mod:`skalds.settings`)."""
    return field(default=default, metadata={"help": help, "min": min, "max": max})


@dataclass
class ControllerConf:
    """``controller.*``: the REST API."""

    host: str = setting("127.0.0.1", "where the REST API listens")
    port: int = setting(8000, "its port", min=0, max=65535)
    max_request_bytes: int = setting(1024 * 1024, "larger request bodies are refused with 413", min=1024)
    max_event_bytes: int = setting(
        256 * 1024, "larger attachments reach the node through the task store, not in the event", min=1024
    )
    max_batch: int = setting(1000, "most tasks one POST /api/tasks/batch may create", min=1)
    id: str | None = setting(None, "this controller's name among several (null: host-port)")
    lead_ttl_s: float = setting(
        2.5, "of several controllers one places and judges; silent this long, a standby takes over", min=0.2
    )
    lead_renew_interval_s: float = setting(0.5, "how often the leading controller renews, a standby tries", min=0.05)
    api_keys: Any = setting(
        None, "operator keys, comma-separated (better: SKALDS_API_KEYS); set, every request needs one"
    )
    viewer_keys: Any = setting(
        None, "read-only keys (reads, events, metrics), comma-separated (better: SKALDS_VIEWER_KEYS)"
    )
    allowed_hosts: Any = setting(None, "Host names answered besides localhost and the bound address ('*': any)")
    allowed_origins: Any = setting(None, "origins whose pages may send changes, besides the controller's own")
    cors_origins: Any = setting(None, "origins whose pages may read the API (CORS); none by default")


@dataclass
class NodeConf:
    """``node.*``: identity, capacity and timings of a node (also of the standalone process)."""

    id: str | None = setting(None, "stable node identity; a restarted node finds its tasks (null: the host name)")
    capacity: int | None = setting(
        None, "worker processes one node runs at once (null: the pool's `capacity`, else 16)", min=1
    )
    labels: dict[str, str] = field(
        default_factory=dict, metadata={"help": "labels shown in /api/skalds, added to the pool's labels"}
    )
    offers: dict[str, float] = field(
        default_factory=dict,
        metadata={"help": "named resources this node offers (cpu, memory_mb, gpu, any name), over the pool's offers"},
    )
    heartbeat_interval_s: float = setting(1.0, "worker heartbeats (progress) to the node and the live state", min=0.01)
    heartbeat_timeout_s: float = setting(10.0, "a worker silent this long is killed and retried", min=0.1)
    lease_ttl_s: float = setting(2.5, "a node silent this long is lost; its tasks move", min=0.1)
    lease_renew_interval_s: float = setting(0.5, "how often a node renews its lease, on a thread of its own", min=0.01)
    fence_margin_s: float = setting(
        1.0,
        "distributed: a worker that has not heard its node's lease for lease_ttl_s minus this stops itself",
        min=0.05,
    )
    fence_check_interval_s: float = setting(5.0, "how often a node reconciles what it runs with the store", min=0.1)
    cancel_grace_s: float = setting(3.0, "cancel: stop flag, then SIGTERM after this long", min=0)
    terminate_grace_s: float = setting(2.0, "... then SIGKILL after this long", min=0)
    prefork: int = setting(
        2,
        "worker processes forked ahead, each waiting to become one task's worker (0: fork at each start)",
        min=0,
        max=64,
    )
    max_retries: int = setting(
        3, "retries after a lost worker or node, then Failed (unless the task or its class sets its own)", min=0
    )
    retry_backoff_s: float = setting(0.5, "wait before retry n: retry_backoff_s * 2^(n-1) ...", min=0)
    retry_backoff_max_s: float = setting(30.0, "... at most this long", min=0)
    output_keep_lines: int = setting(
        1000, "lines of each task's stdout and stderr kept for /api/tasks/{id}/logs", min=1
    )
    output_retention_s: float = setting(86400.0, "a task's output is forgotten this long after its last line", min=1)
    output_echo: bool = setting(True, "also print workers' output on the node's own stdout and stderr")


@dataclass
class DispatchConf:
    """``dispatch.*``: how the controller places tasks (``dispatch=<policy>`` picks a file of
    ``conf/dispatch/``)."""

    policy: str = setting("least_loaded", "least_loaded, round_robin, binpack, random or spread (dispatch=<name>)")
    spread_label: str = setting("zone", "spread: the node label whose values tasks are spread across")
    aging_s: float = setting(
        60.0, "a waiting task's priority grows by 1 for every this many seconds it waits (0: no aging)", min=0
    )
    sticky: bool = setting(True, "prefer the node a task last ran on")
    preempt: bool = setting(
        False, "a task with no room displaces the lowest-priority Running task below it (no retry consumed)"
    )
    reason_refresh_s: float = setting(
        5.0, "a waiting task's queue position in pendingReason is rewritten at most this often", min=0.1
    )


@dataclass
class MonitorConf:
    """``monitor.*``: failure detection on the controller."""

    check_interval_s: float = setting(0.25, "how often the controller looks for lost nodes", min=0.01)
    sweep_interval_s: float = setting(1.0, "how often it offers waiting tasks to the dispatcher again", min=0.01)


@dataclass
class ReloadConf:
    """``reload.*``: hot reload of the worker pool's files."""

    watch: bool = setting(True, "watch the pool's files and apply every save")
    debounce_s: float = setting(0.05, "a burst of partial writes within this window is one reload", min=0)
    pool_file: str | None = setting(None, "use this pool file instead of conf/workers/<workers.name>.yaml")


@dataclass
class SkaldsConf:
    """The whole tree (groups ``backend``, ``workers`` and ``bench`` are composed from
    ``conf/``; their keys are checked where they are read; ``dispatch`` is a group too, whose
    files set keys of :class:`DispatchConf`)."""

    mode: str = setting("standalone", "standalone, or with +mode=: controller, node, edge, bench")
    data_dir: str = setting("./.skalds", "where the embedded backends keep their files (SQLite)")
    log_level: str = setting("INFO", "DEBUG, INFO, WARNING, ERROR")
    controller: ControllerConf = field(default_factory=ControllerConf)
    node: NodeConf = field(default_factory=NodeConf)
    dispatch: DispatchConf = field(default_factory=DispatchConf)
    monitor: MonitorConf = field(default_factory=MonitorConf)
    reload: ReloadConf = field(default_factory=ReloadConf)
    backend: Any = None
    workers: Any = None
    bench: Any = None


#: The defaults, for component settings that need one of these values.
DEFAULTS = SkaldsConf()


def default_retry_policy() -> RetryPolicy:
    """The retry policy of the defaults above."""
    n = DEFAULTS.node
    return RetryPolicy(n.max_retries, n.retry_backoff_s, n.retry_backoff_max_s)


COMMANDS = """\
  python -m skalds                                   controller + one node, embedded backends
  python -m skalds +mode=controller                  REST API, dispatcher, monitor
  python -m skalds +mode=node workers=camera_pool node.id=node-a
  python -m skalds +mode=edge workers=camera_pool node.id=edge-1
  python -m skalds +mode=bench bench.tasks=100       load test (sweep with -m)
  python -m skalds --cfg job                         print the composed config
  python -m skalds --version"""


def help_template() -> str:
    """The text of ``python -m skalds --help`` (Hydra's help template)."""
    from skalds import __version__

    width = max(len(k) for k, _, _ in rows())
    keys = "\n".join(f"  {k.ljust(width)}  {d:<10}  {m}" for k, d, m in rows())
    return (
        f"skalds {__version__}: an event-driven scheduler and executor of long-lived tasks\n\n"
        "Usage: python -m skalds [+mode=MODE] [GROUP=OPTION ...] [KEY=VALUE ...]   (or: skalds ...)\n\n"
        f"Common commands:\n{COMMANDS}\n\n"
        "Groups (pick an option with GROUP=OPTION; the mode with +mode=MODE):\n$APP_CONFIG_GROUPS\n"
        f"Keys (KEY=VALUE; default, meaning):\n{keys}\n\n"
        "Backend keys (backend.kafka.*, backend.redis.*, backend.mongo.*) and the pool's keys (workers.*)\n"
        "are listed by --cfg job. Environment: KAFKA_HOST, REDIS_HOST, MONGO_HOST, DB_NAME, ... (.env read).\n\n"
        "Flags:\n"
        "  --help, -h        this help\n"
        "  --version, -V     the version of Skalds\n"
        "  --cfg job         print the composed config instead of running (--resolve to resolve it)\n"
        "  --multirun, -m    run one job per value of swept keys (a=1,2 b=x,y)\n"
        "  --hydra-help      Hydra's own help"
    )


def register() -> None:
    """Register the schema and the help text in Hydra's ConfigStore (idempotent)."""
    store = ConfigStore.instance()
    store.store(name=SCHEMA_NAME, node=SkaldsConf)
    help_node = {"app_name": "skalds", "header": "", "footer": "", "template": help_template()}
    store.store(group="hydra/help", name="skalds", node=help_node, package="hydra.help")


def rows(cls: type = SkaldsConf, prefix: str = "") -> list[tuple[str, str, str]]:
    """``(key, default, meaning)`` for every leaf setting, in declaration order."""
    out: list[tuple[str, str, str]] = []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        factory = f.default_factory
        if isinstance(factory, type) and dataclasses.is_dataclass(factory):
            out += rows(factory, f"{key}.")
            continue
        if "help" not in f.metadata:
            continue
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        shown = "null" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
        rng = _range(f.metadata)
        out.append((key, shown, f.metadata["help"] + rng))
    return out


def _range(meta: Any) -> str:
    low, high = meta.get("min"), meta.get("max")
    if low is not None and high is not None:
        return f" ({low:g}..{high:g})"
    if low is not None:
        return f" (>= {low:g})"
    return ""


def markdown_table() -> str:
    """The README's configuration table."""
    lines = ["| key | default | meaning |", "|---|---|---|"]
    lines += [f"| `{k}` | `{d}` | {m} |" for k, d, m in rows()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())


def split_keys(value: object) -> list[str]:
    """Keys from a list or a comma-separated string (blank ones dropped)."""
    if value is None:
        return []
    items: Iterable[object] = value.split(",") if isinstance(value, str) else value  # type: ignore[assignment]
    return [str(k).strip() for k in items if str(k).strip()]
