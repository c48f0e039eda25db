"""``/metrics``: Skalds in the Prometheus text format.

Two kinds of figures. Counts of what is (tasks by state and class, nodes by state, each node's
running tasks, capacity, CPU and memory, live heartbeats, watched files that failed to reload)
are read from the store, the node directory and the live state when Prometheus scrapes.
Latencies and counts of what happened (dispatch, update, cancel; retries, failovers, reloads)
are measured from the event hub, which sees the whole cluster: each latency runs from the
event that asked (a task created, an update accepted, a cancel) to the node's status event
saying it was done, both timed on this controller's clock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from skalds.controller.events import HubEvent
from skalds.controller.nodes import NodeDirectory
from skalds.core.task import AttemptOutcome
from skalds.errors import BackendUnavailable
from skalds.ports.live_state import LiveState
from skalds.ports.task_store import TaskStore

#: Latency buckets, in seconds: milliseconds for starts and updates, up to a minute.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Now(Collector):
    """The figures of what is, read at scrape time."""

    def __init__(self, store: TaskStore, live: LiveState, nodes: NodeDirectory, files: Any) -> None:
        self.store, self.live, self.nodes, self.files = store, live, nodes, files

    def collect(self) -> Iterator[GaugeMetricFamily]:
        tasks = GaugeMetricFamily("skalds_tasks", "Tasks by state and class", labels=["state", "class"])
        try:
            for (state, cls), count in sorted(self.store.count_by_status_and_class().items()):
                tasks.add_metric([state.value, cls], count)
        except BackendUnavailable:
            pass
        yield tasks
        views = self.nodes.views()
        up = GaugeMetricFamily("skalds_nodes", "Nodes and edges by state", labels=["state", "type"])
        for online in ("online", "offline"):
            for kind in ("node", "edge"):
                n = len([v for v in views if v.online == (online == "online") and v.info.mode == kind])
                up.add_metric([online, kind], n)
        yield up
        per_node = {
            "running": GaugeMetricFamily("skalds_node_running", "Worker processes a node runs", labels=["node"]),
            "capacity": GaugeMetricFamily("skalds_node_capacity", "Worker processes a node may run", labels=["node"]),
            "cpu": GaugeMetricFamily(
                "skalds_node_cpu_percent", "CPU of a node's process tree (100 = a core)", labels=["node"]
            ),
            "memory": GaugeMetricFamily(
                "skalds_node_memory_bytes", "Resident memory of a node's process tree", labels=["node"]
            ),
        }
        for view in views:
            if not view.online:
                continue
            info = view.info
            per_node["running"].add_metric([info.id], info.running)
            per_node["capacity"].add_metric([info.id], info.capacity)
            if info.cpu_percent is not None:
                per_node["cpu"].add_metric([info.id], info.cpu_percent)
            if info.memory_mb is not None:
                per_node["memory"].add_metric([info.id], info.memory_mb * 2**20)
        yield from per_node.values()
        beats = GaugeMetricFamily("skalds_heartbeats", "Workers with a live heartbeat")
        try:
            beats.add_metric([], len(self.live.heartbeats()))
        except BackendUnavailable:
            pass
        yield beats
        bad = GaugeMetricFamily(
            "skalds_pool_files_rejected", "Watched pool files whose last edit was rejected", labels=["node"]
        )
        for node, files in self.files().items():
            bad.add_metric([node], len([f for f in files if not f.get("ok", True)]))
        yield bad


class Metrics:
    """The controller's registry, fed by the event hub and read by ``/metrics``."""

    def __init__(self, store: TaskStore, live: LiveState, nodes: NodeDirectory, files: Any = dict) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_Now(store, live, nodes, files))
        self.dispatch = Histogram(
            "skalds_dispatch_seconds",
            "A task created or requeued until its worker runs",
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.update = Histogram(
            "skalds_update_seconds",
            "An attachments update accepted until the handler returned",
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.cancel = Histogram(
            "skalds_cancel_seconds",
            "A cancel accepted until the worker process is gone",
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.retries = Counter("skalds_retries", "Lost runs given another try", ["cause"], registry=self.registry)
        self.failed = Counter("skalds_failed", "Tasks that ended Failed", ["cause"], registry=self.registry)
        self.failovers = Counter("skalds_failovers", "Tasks taken from a lost node", registry=self.registry)
        self.reloads = Counter(
            "skalds_reloads", "Reloads of this process's pool files", ["result"], registry=self.registry
        )
        self._asked: dict[tuple[str, str], float] = {}  # (what, task id[:version]) -> monotonic

    def observe(self, event: HubEvent) -> None:
        """Account for one hub event (called on every publish; cheap)."""
        now = time.monotonic()
        data, task = event.data, event.task_id or ""
        if event.type == "task.pending":
            self._asked.setdefault(("dispatch", task), now)
        elif event.type == "task.updated" and data.get("version") is not None:
            self._asked[("update", f"{task}:{data['version']}")] = now
        elif event.type == "task.cancelled":
            self._asked.setdefault(("cancel", task), now)
        elif event.type == "task.status":
            self._status(task, data, now)
        if len(self._asked) > 100_000:  # asked long ago and never answered: forget the oldest
            for key in list(self._asked)[:50_000]:
                del self._asked[key]

    def _status(self, task: str, data: dict[str, Any], now: float) -> None:
        status, cause = data.get("status"), data.get("cause")
        if status in ("Running", "Paused") and not data.get("exit") and data.get("appliedVersion") is None:
            self._finish("dispatch", task, now, self.dispatch)
        if data.get("appliedVersion") is not None:
            self._finish("update", f"{task}:{data['appliedVersion']}", now, self.update)
        if data.get("exit"):
            self._finish("cancel", task, now, self.cancel)
        if cause == AttemptOutcome.NODE_LOST.value:
            self.failovers.inc()
        if status == "Created" and cause:
            self.retries.labels(cause).inc()
        if status == "Failed":
            self.failed.labels(cause or data.get("exit") or "failed").inc()

    def _finish(self, what: str, key: str, now: float, histogram: Histogram) -> None:
        asked = self._asked.pop((what, key), None)
        if asked is not None:
            histogram.observe(now - asked)

    def reloaded(self, ok: bool) -> None:
        """Count one reload of this process's pool files."""
        self.reloads.labels("applied" if ok else "rejected").inc()

    def text(self) -> bytes:
        """The exposition."""
        return generate_latest(self.registry)
