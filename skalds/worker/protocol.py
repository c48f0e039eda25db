"""Every message between a node, its launcher and its workers, as typed records.

Two channels:

- **launcher socket** (SOCK_SEQPACKET, one pickled record per packet): node → launcher
  :class:`Launch` with the worker's pipe attached (SCM_RIGHTS); launcher → node :class:`Ready`,
  :class:`Launched`, :class:`Exited`. These stay a few dozen bytes whatever a task carries.
- **worker pipe** (a stream socket, one pickled record per message, any size): node → worker
  :class:`WorkerSpec` first, then :class:`Update`, :class:`Pause`, :class:`Resume`,
  :class:`Cancel`, :class:`LeaseValid`; worker → node :class:`Started`, :class:`Beat`,
  :class:`Applied`, :class:`UpdateFailed`, :class:`Finished`, :class:`Failed`, :class:`Stopped`.

Times named ``*_ms`` are epoch milliseconds, ``*_us`` epoch microseconds; times named ``*_at`` without a unit suffix in
:class:`LeaseValid` are ``time.monotonic()`` values, which every process on one host shares.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

#: Exit code of a worker that stopped itself because its node's lease ran out.
EXIT_SELF_FENCED = 3


class StopCause(enum.StrEnum):
    """Why a worker stopped before its main handler was done."""

    REQUESTED = "requested"  # its node asked (cancel, fencing, shutdown)
    TERMINATED = "terminated"  # SIGTERM from someone other than its node
    SELF_FENCED = "self_fenced"  # it had not heard its node's lease in time


# ---- launcher socket ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Launch:
    """Fork a worker on the attached pipe. ``title`` becomes its process title."""

    launch_id: int
    title: str


@dataclass(frozen=True, slots=True)
class Preload:
    """Import these modules now (a pool's ``classes:`` gained them), so forks have them."""

    modules: list[str]


@dataclass(frozen=True, slots=True)
class Ready:
    """The launcher has imported the worker modules."""

    pid: int


@dataclass(frozen=True, slots=True)
class Launched:
    """A worker was forked for ``launch_id``."""

    launch_id: int
    pid: int


@dataclass(frozen=True, slots=True)
class Exited:
    """Worker ``pid`` was reaped; ``returncode`` as ``subprocess`` reports it (negative =
    killed by that signal)."""

    pid: int
    returncode: int


# ---- worker pipe, node -> worker -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LeaseValid:
    """The node's lease is good until further notice; if no newer one arrives, set the stop
    flag at ``stop_at``, raise ``TaskStopped`` in the main thread at ``terminate_at`` and exit
    at ``exit_at`` (monotonic times), before anyone else may run the task."""

    stop_at: float
    terminate_at: float
    exit_at: float


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker process runs. ``lease`` is None when the task never moves to another
    node while its node is unreachable (embedded backends, an edge's own tasks): then the
    worker never stops itself."""

    task_id: str
    class_name: str
    class_path: str
    attachments: dict[str, Any]
    version: int
    epoch: int
    node_id: str
    paused: bool
    heartbeat_interval_s: float
    log_level: str
    attempt: int = 0
    lease: LeaseValid | None = None


@dataclass(frozen=True, slots=True)
class Update:
    """New attachments, numbered ``version``."""

    version: int
    attachments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Pause:
    """Block in ``wait_if_paused``."""


@dataclass(frozen=True, slots=True)
class Resume:
    """Stop blocking in ``wait_if_paused``."""


@dataclass(frozen=True, slots=True)
class Cancel:
    """Set the stop flag (the node escalates to SIGTERM, then SIGKILL, if it is ignored)."""


# ---- worker pipe, worker -> node -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Started:
    """The worker process is up and initialized, about to run its before hook (``at_us``:
    epoch microseconds, so that latencies of a few milliseconds can be measured)."""

    at_us: int
    pid: int


@dataclass(frozen=True, slots=True)
class Beat:
    """A heartbeat, with the progress the worker reported last."""

    at_ms: int
    progress: float | None
    message: str | None


@dataclass(frozen=True, slots=True)
class Applied:
    """The update handler returned for ``version`` (``at_us``: epoch microseconds)."""

    version: int
    at_us: int


@dataclass(frozen=True, slots=True)
class UpdateFailed:
    """The update handler (or the validation before it) raised for ``version``."""

    version: int
    error: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The main handler returned (and after/release ran)."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class Failed:
    """A hook raised."""

    message: str
    traceback: str


@dataclass(frozen=True, slots=True)
class Stopped:
    """The worker stopped before its main handler was done, for ``cause``."""

    at_ms: int
    cause: StopCause


ToWorker = Update | Pause | Resume | Cancel | LeaseValid
FromWorker = Started | Beat | Applied | UpdateFailed | Finished | Failed | Stopped
Outcome = Finished | Failed | Stopped
