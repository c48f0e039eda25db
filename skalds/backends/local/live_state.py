"""In-memory live state with per-entry expiry, for one process tree."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence

from skalds.core.records import Heartbeat, NodeInfo
from skalds.core.task import TaskLifecycleStatus
from skalds.ports.live_state import LiveState, check_ended


class MemoryLiveState(LiveState):
    """Leases and heartbeats in dicts, each entry stamped with its monotonic deadline."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: dict[str, tuple[float, NodeInfo]] = {}
        self._beats: dict[str, tuple[float, Heartbeat]] = {}

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

    def tasks_ended(self, ends: Mapping[str, TaskLifecycleStatus]) -> None:
        """Forget the tasks' heartbeats; no one outside this process reads how they ended."""
        check_ended(ends)
        self.drop_heartbeats(ends)
