"""Live state port: node leases, task heartbeats and task output, which expire on their own."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence

from skalds.core.records import Heartbeat, LogLine, NodeInfo
from skalds.core.task import TaskLifecycleStatus


def check_ended(ends: Mapping[str, TaskLifecycleStatus]) -> None:
    """Refuse states that are not ends (for :meth:`LiveState.tasks_ended`).

    Raises:
        ValueError: naming the first task whose state is not Finished, Failed or Cancelled.
    """
    for task_id, status in ends.items():
        if not TaskLifecycleStatus(status).is_terminal:
            raise ValueError(f"task {task_id!r}: {status} is not an end (Finished, Failed or Cancelled)")


class LiveState(abc.ABC):
    """Short-lived facts with a time to live per entry (per hash field in Redis).

    Methods block until the backend answered (adapters bound that with their own timeouts)
    and are safe from any thread. An entry whose TTL ran out is gone: readers never see it
    again until it is put anew.
    """

    @abc.abstractmethod
    def claim_node(self, node: NodeInfo, ttl_s: float, *, force: bool = False) -> NodeInfo | None:
        """Create or renew ``node``'s lease for ``ttl_s`` seconds, atomically, unless a lease
        of the same node id held by another ``instance`` is live.

        Returns None when the lease is ours now, else the holder's record (nothing written).
        With ``force`` the lease is taken whoever holds it (the caller knows the holder died).

        Raises:
            BackendUnavailable: the backend cannot be reached; the lease may not be renewed.
        """

    @abc.abstractmethod
    def remove_node(self, node_id: str, instance: str) -> None:
        """Drop a node's lease at once (clean shutdown), if ``instance`` holds it. Idempotent."""

    @abc.abstractmethod
    def nodes(self) -> list[NodeInfo]:
        """Every node whose lease has not expired, in no particular order."""

    @abc.abstractmethod
    def claim_lead(self, role: str, holder: str, ttl_s: float) -> str | None:
        """Create or renew the lease of ``role`` (such as ``controller``) for ``holder``, for
        ``ttl_s`` seconds, atomically, unless another holder's lease of it is live.

        Returns None when the lease is ``holder``'s now, else the live holder (nothing written).

        Raises:
            BackendUnavailable: the backend cannot be reached; the lease may not be renewed.
        """

    @abc.abstractmethod
    def release_lead(self, role: str, holder: str) -> None:
        """Drop the lease of ``role`` at once, if ``holder`` holds it (clean shutdown). Idempotent."""

    @abc.abstractmethod
    def lead_holder(self, role: str) -> str | None:
        """Who holds the lease of ``role`` now, if anyone."""

    @abc.abstractmethod
    def put_heartbeats(self, beats: Sequence[Heartbeat], ttl_s: float) -> None:
        """Record many heartbeats in one round trip; each expires after ``ttl_s`` seconds."""

    @abc.abstractmethod
    def heartbeats(self, task_ids: Iterable[str] | None = None) -> dict[str, Heartbeat]:
        """Unexpired heartbeats by task id: of the given tasks, or of all when ``None``."""

    @abc.abstractmethod
    def drop_heartbeats(self, task_ids: Iterable[str]) -> None:
        """Forget the heartbeats of tasks that ended. Idempotent."""

    @abc.abstractmethod
    def append_logs(self, lines: Mapping[str, Sequence[LogLine]], keep: int, ttl_s: float) -> None:
        """Append output lines of many tasks in one round trip. Each task keeps about its last
        ``keep`` lines; a task's lines expire ``ttl_s`` after the last append to them."""

    @abc.abstractmethod
    def read_logs(self, task_id: str, *, after: str | None = None, limit: int = 200) -> list[tuple[str, LogLine]]:
        """A task's lines, oldest first, each with its cursor: the last ``limit`` lines, or
        with ``after`` (a cursor from an earlier read) the first ``limit`` lines after it.
        Cursors are opaque strings, increasing with each line appended."""

    @abc.abstractmethod
    def drop_logs(self, task_ids: Iterable[str]) -> None:
        """Forget the lines of these tasks (their records were deleted). Idempotent."""

    @abc.abstractmethod
    def tasks_ended(self, ends: Mapping[str, TaskLifecycleStatus]) -> None:
        """Tasks ended, each in the terminal state given: forget their heartbeats (as
        :meth:`drop_heartbeats`) and record how each ended where the adapter keeps such a
        record for outside readers (the Redis adapter: the original's
        ``task:{id}:heartbeat`` end values); the record expires on its own. One round trip;
        idempotent; an empty mapping writes nothing.

        Raises:
            ValueError: a state is not Finished, Failed or Cancelled (nothing written).
            BackendUnavailable: the backend cannot be reached.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Idempotent."""
