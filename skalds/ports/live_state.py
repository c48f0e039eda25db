"""Live state port: node leases and task heartbeats, which expire on their own."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class NodeInfo:
    """A node's lease record: who it is, what it can run and how busy it is.

    ``heartbeat_at`` and ``started_at`` are UNIX seconds.
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
    started_at: float = 0.0
    heartbeat_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeInfo:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class Heartbeat:
    """The last sign of life of one task's worker. ``at`` is UNIX seconds; ``progress`` is
    whatever the worker last reported (a fraction 0..1, or None)."""

    task_id: str
    node_id: str
    epoch: int
    at: float
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


class LiveState(abc.ABC):
    """Short-lived facts with a time to live per entry (per hash field in Redis).

    Methods block until the backend answered and are safe from any thread. An entry whose TTL
    ran out is gone: readers never see it again until it is put anew.
    """

    @abc.abstractmethod
    def put_node(self, node: NodeInfo, ttl_s: float) -> None:
        """Create or renew a node's lease for ``ttl_s`` seconds."""

    @abc.abstractmethod
    def remove_node(self, node_id: str) -> None:
        """Drop a node's lease at once (clean shutdown). Idempotent."""

    @abc.abstractmethod
    def nodes(self) -> list[NodeInfo]:
        """Every node whose lease has not expired, in no particular order."""

    @abc.abstractmethod
    def put_heartbeats(self, beats: Sequence[Heartbeat], ttl_s: float) -> None:
        """Record many heartbeats in one round trip; each expires after ``ttl_s`` seconds."""

    @abc.abstractmethod
    def heartbeats(self, task_ids: Iterable[str] | None = None) -> dict[str, Heartbeat]:
        """Unexpired heartbeats by task id: of the given tasks, or of all when ``None``."""

    @abc.abstractmethod
    def drop_heartbeats(self, task_ids: Iterable[str]) -> None:
        """Forget the heartbeats of tasks that ended. Idempotent."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Idempotent."""
