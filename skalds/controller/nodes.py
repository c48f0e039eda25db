"""The nodes a controller has seen: online while their lease lives, offline for a while after.

The live state only knows nodes whose lease is alive; operators (and the original's Skalds
page) also want the node that just went away. The directory keeps each node's last lease record
and when it was last seen, fed by every read of the leases (the monitor reads them four times a
second), and forgets a node offline for ``forget_after_s``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from skalds.core.records import NodeInfo
from skalds.core.task import now_ms
from skalds.errors import BackendUnavailable
from skalds.ports.live_state import LiveState


@dataclass(frozen=True)
class NodeView:
    """A node as the controller sees it."""

    info: NodeInfo
    online: bool
    first_seen: int  # epoch ms
    last_seen: int  # epoch ms


class NodeDirectory:
    """Thread-safe record of the nodes seen, refreshed from the live state."""

    def __init__(self, live: LiveState, forget_after_s: float = 3600.0, refresh_s: float = 0.5) -> None:
        self.live = live
        self.forget_after_ms = int(forget_after_s * 1000)
        self.refresh_ms = int(refresh_s * 1000)
        self._lock = threading.Lock()
        self._nodes: dict[str, NodeView] = {}
        self._refreshed = 0

    def observe(self, nodes: list[NodeInfo]) -> None:
        """Take a fresh read of the live leases (every node in it is online)."""
        now = now_ms()
        with self._lock:
            live = {n.id for n in nodes}
            for node in nodes:
                seen = self._nodes.get(node.id)
                first = seen.first_seen if seen is not None and seen.online else now
                self._nodes[node.id] = NodeView(node, True, first, now)
            for node_id, view in list(self._nodes.items()):
                if node_id in live:
                    continue
                if now - view.last_seen > self.forget_after_ms:
                    del self._nodes[node_id]
                elif view.online:
                    self._nodes[node_id] = NodeView(view.info, False, view.first_seen, view.last_seen)
            self._refreshed = now

    def views(self) -> list[NodeView]:
        """Every node seen (online first, then by id), re-reading the leases if the last read
        is older than ``refresh_s``. A live state that cannot be read leaves the last view."""
        if now_ms() - self._refreshed >= self.refresh_ms:
            try:
                self.observe(self.live.nodes())
            except BackendUnavailable:
                pass
        with self._lock:
            return sorted(self._nodes.values(), key=lambda v: (not v.online, v.info.id))

    def get(self, node_id: str) -> NodeView | None:
        """One node, or None if it was never seen (or forgotten)."""
        return next((v for v in self.views() if v.info.id == node_id), None)
