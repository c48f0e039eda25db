"""In-memory live state with per-entry expiry, for one process tree."""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from skalds.core.records import Heartbeat, LogLine, NodeInfo
from skalds.core.task import TaskLifecycleStatus
from skalds.ports.live_state import LiveState, check_ended


class MemoryLiveState(LiveState):
    """Leases and heartbeats in dicts, each entry stamped with its monotonic deadline; each
    task's output in a bounded deque, with one deadline for the whole task."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: dict[str, tuple[float, NodeInfo]] = {}
        self._beats: dict[str, tuple[float, Heartbeat]] = {}
        self._logs: dict[str, tuple[float, deque[tuple[int, LogLine]]]] = {}
        self._line_ids = itertools.count(1)
        self._leads: dict[str, tuple[float, str]] = {}  # role -> (deadline, holder)

    def claim_node(self, node: NodeInfo, ttl_s: float, *, force: bool = False) -> NodeInfo | None:
        now = time.monotonic()
        with self._lock:
            current = self._nodes.get(node.id)
            if current is not None and current[0] > now and current[1].instance != node.instance and not force:
                return current[1]
            self._nodes[node.id] = (now + ttl_s, node)
            return None

    def remove_node(self, node_id: str, instance: str) -> None:
        with self._lock:
            current = self._nodes.get(node_id)
            if current is not None and current[1].instance == instance:
                del self._nodes[node_id]

    def nodes(self) -> list[NodeInfo]:
        now = time.monotonic()
        with self._lock:
            return [n for deadline, n in self._nodes.values() if deadline > now]

    def claim_lead(self, role: str, holder: str, ttl_s: float) -> str | None:
        now = time.monotonic()
        with self._lock:
            current = self._leads.get(role)
            if current is not None and current[0] > now and current[1] != holder:
                return current[1]
            self._leads[role] = (now + ttl_s, holder)
            return None

    def release_lead(self, role: str, holder: str) -> None:
        with self._lock:
            current = self._leads.get(role)
            if current is not None and current[1] == holder:
                del self._leads[role]

    def lead_holder(self, role: str) -> str | None:
        with self._lock:
            current = self._leads.get(role)
            return current[1] if current is not None and current[0] > time.monotonic() else None

    def put_heartbeats(self, beats: Sequence[Heartbeat], ttl_s: float) -> None:
        deadline = time.monotonic() + ttl_s
        with self._lock:
            for beat in beats:
                self._beats[beat.task_id] = (deadline, beat)

    def heartbeats(self, task_ids: Iterable[str] | None = None) -> dict[str, Heartbeat]:
        now = time.monotonic()
        with self._lock:
            if task_ids is None:
                items = list(self._beats.items())
            else:
                items = [(t, self._beats[t]) for t in task_ids if t in self._beats]
            return {t: beat for t, (deadline, beat) in items if deadline > now}

    def drop_heartbeats(self, task_ids: Iterable[str]) -> None:
        with self._lock:
            for task_id in task_ids:
                self._beats.pop(task_id, None)

    def append_logs(self, lines: Mapping[str, Sequence[LogLine]], keep: int, ttl_s: float) -> None:
        now = time.monotonic()
        with self._lock:
            for task_id, new in lines.items():
                entry = self._logs.get(task_id)
                kept = entry[1] if entry is not None and entry[0] > now else deque(maxlen=max(1, keep))
                kept.extend((next(self._line_ids), line) for line in new)
                self._logs[task_id] = (now + ttl_s, kept)
            if len(self._logs) > 2 * len(lines) + 64:  # now and then, forget expired tasks
                for task_id in [t for t, (deadline, _) in self._logs.items() if deadline <= now]:
                    del self._logs[task_id]

    def read_logs(self, task_id: str, *, after: str | None = None, limit: int = 200) -> list[tuple[str, LogLine]]:
        with self._lock:
            entry = self._logs.get(task_id)
            if entry is None or entry[0] <= time.monotonic():
                return []
            kept = list(entry[1])
        if after is not None:
            start = int(after) if after.isdigit() else 0
            first = bisect.bisect_right(kept, start, key=lambda item: item[0])
            chosen = kept[first : first + limit]
        else:
            chosen = kept[-limit:] if limit > 0 else []
        return [(str(line_id), line) for line_id, line in chosen]

    def drop_logs(self, task_ids: Iterable[str]) -> None:
        with self._lock:
            for task_id in task_ids:
                self._logs.pop(task_id, None)

    def tasks_ended(self, ends: Mapping[str, TaskLifecycleStatus]) -> None:
        """Forget the tasks' heartbeats; no one outside this process reads how they ended."""
        check_ended(ends)
        self.drop_heartbeats(ends)
