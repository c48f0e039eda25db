"""The short-lived records nodes publish: a node's lease, a task's heartbeat and its output lines."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class NodeInfo:
    """A node's lease record: who it is, what it can run and how busy it is.

    ``instance`` tells two processes that claim the same node id apart; ``pid`` and ``host``
    name the holder in errors. ``heartbeat_at`` and ``started_at`` are epoch milliseconds.
    A ``draining`` node is stopping: it keeps its lease until its workers are gone and its
    tasks handed back, but takes no new work.
    """

    id: str
    mode: str
    classes: list[str]
    capacity: int
    running: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    #: className -> JSON Schema of its attachments, so a controller that cannot import a
    #: class still validates requests for it.
    schemas: dict[str, Any] = field(default_factory=dict)
    #: The node's watched pool files with their last reload: ``{path, ok, error, at}``.
    files: list[dict[str, Any]] = field(default_factory=list)
    instance: str = ""
    pid: int = 0
    host: str = ""
    draining: bool = False
    #: Named resources the node offers besides its ``capacity`` slots (``cpu``, ``gpu``, ...).
    offers: dict[str, float] = field(default_factory=dict)
    #: className -> what each task of it needs here (:class:`~skalds.core.requirements.ClassSpec`
    #: as a dict), for the classes whose pool declares any.
    class_specs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: CPU (100 = one core) and resident memory of the node's process tree, when known.
    cpu_percent: float | None = None
    memory_mb: float | None = None
    started_at: int = 0
    heartbeat_at: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeInfo:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def holder(self) -> str:
        """Who holds this lease, for messages: ``pid 123 on host-a``."""
        return f"pid {self.pid} on {self.host or 'an unknown host'}"


@dataclass
class Heartbeat:
    """The last sign of life of one task's worker. ``at`` is epoch milliseconds; ``progress``
    is whatever the worker last reported (a fraction 0..1, or None) with its ``message``."""

    task_id: str
    node_id: str
    epoch: int
    at: int
    progress: float | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Heartbeat:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class LogLine:
    """One line a worker process wrote: ``at`` (epoch ms, when the node read it), the
    ``stream`` (``stdout``, ``stderr``, or ``skalds`` for the node's own notes), the ``level``
    of a logging record (None for plain output), and which run wrote it (``node``, ``epoch``,
    ``attempt``)."""

    at: int
    stream: str
    text: str
    node: str
    epoch: int
    attempt: int = 0
    level: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogLine:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)
