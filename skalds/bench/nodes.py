"""The ``nodes`` phase: many node processes beside one controller, and a burst of tasks
spread over them.

The benchmark's own process hosts the controller (API, dispatcher, monitor) and no node;
``bench.nodes`` node processes are started beside it (``python -m skalds +mode=node``, as a
user starts them) on the same distributed backends. ``bench.tasks`` tasks are created at
once through ``POST /api/tasks/batch`` from the load generator's process. Measured:

- placement throughput: tasks / (first create request -> last assignment written), and
  tasks / (first create request -> last worker running);
- how the tasks spread: fewest and most per node;
- CPU over that window: the benchmark process (the controller, with the benchmark's own
  event recorder and HTTP server: an upper bound of the controller's) and the node
  processes (each node agent alone; its launcher and workers are other processes), as % of
  one core, and the controller's CPU milliseconds per placed task.

Then every task is cancelled by one filter request, the nodes are stopped with SIGINT (as
Ctrl-C) and must exit by themselves; whatever of theirs is still alive after that is
counted (``nodes_left_running``) and killed.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from skalds.bench.startup import process_command, process_env
from skalds.core.lifecycle import Action
from skalds.errors import ConfigError

if TYPE_CHECKING:
    from skalds.bench.runner import Bench

_STOP_WAIT_S = 60.0


def require_distributed(settings: Any) -> None:
    """The phase spans processes: refuse the embedded backends, whose bus is in-process.

    Raises:
        ConfigError: the backend is not ``distributed``.
    """
    kind = settings.backend.get("kind")
    if kind != "distributed":
        raise ConfigError(
            f"bench.phases: the nodes phase starts node processes, which the {kind!r} backend's "
            "in-process bus cannot reach; run it with backend=distributed (e.g. against "
            "python -m tests.servers) or leave nodes out of bench.phases",
            key="bench.phases",
        )


def node_capacity(tasks: int, nodes: int) -> int:
    """Slots per node: twice an even share, so the policy, not a full node, decides where
    each task goes."""
    return 2 * math.ceil(tasks / nodes)


def _cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


class NodeFleet:
    """``count`` node processes of this benchmark's settings, started and stopped together."""

    def __init__(self, settings: Any, run_id: str, count: int, capacity: int, pool_file: Path, out: Path) -> None:
        self.ids = [f"bench-n{run_id}-{i:02d}" for i in range(count)]
        self.procs: list[subprocess.Popen[bytes]] = []
        self._settings, self._capacity, self._pool_file, self._out = settings, capacity, pool_file, out

    def start(self) -> None:
        """Spawn every node process (logs in ``nodes-<id>.log`` of the job directory)."""
        env = process_env(self._settings)
        node = self._settings.node
        for node_id in self.ids:
            cmd = process_command(
                self._settings,
                "node",
                f"node.id={node_id}",
                f"node.capacity={self._capacity}",
                f"reload.pool_file={self._pool_file}",
                f"node.lease_ttl_s={node.lease.ttl_s}",
                f"node.heartbeat_interval_s={node.supervision.heartbeat_interval_s}",
                "log_level=WARNING",
            )
            with open(self._out / f"nodes-{node_id}.log", "ab") as log:
                self.procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))

    def exited(self) -> list[int]:
        """The exit codes of node processes that ended already."""
        return [code for p in self.procs if (code := p.poll()) is not None]

    def cpu_s(self) -> list[float]:
        """CPU seconds (user + system) each node process used so far."""
        return [_cpu_s(psutil.Process(p.pid)) for p in self.procs]

    def stop(self) -> int:
        """SIGINT every node, wait for each to exit; kill what is still alive then, the nodes'
        launchers and workers included. Returns how many processes had to be killed."""
        family: list[psutil.Process] = []
        for p in self.procs:
            try:
                family += psutil.Process(p.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + _STOP_WAIT_S
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        # A worker dies with its node (PR_SET_PDEATHSIG); give the kernel a moment to reap.
        _gone, alive = psutil.wait_procs(family, timeout=5)
        left = [p for p in self.procs if p.poll() is None]
        for p in left:
            p.kill()
            p.wait()
        for proc in alive:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        return len(left) + len(alive)


def run_nodes_phase(runner: Bench, fleet: NodeFleet) -> dict[str, Any]:
    """Place ``bench.tasks`` tasks on the fleet's nodes (already started) and measure; cancel
    them all. Returns the phase's figures (``nodes_*``)."""
    bench, system = runner.bench, runner.system
    live, store = system.backends.live, system.backends.store
    wanted = set(fleet.ids)

    def all_up() -> bool:
        if fleet.exited():
            raise RuntimeError(f"benchmark: a node process exited before it was ready: {fleet.exited()}")
        return wanted <= {n.id for n in live.nodes() if not n.draining}

    runner.recorder.wait(all_up, bench.timeout_s, f"{len(fleet.ids)} node processes up")
    ids = [f"N{runner.run_id}-{i:05d}" for i in range(bench.tasks)]
    me = psutil.Process(os.getpid())
    cpu_before, nodes_before = _cpu_s(me), fleet.cpu_s()
    t0 = time.monotonic()
    how = ["batch", str(system.settings.max_batch)]
    latencies, span = runner._at_once(ids, f"{len(ids)} tasks on {len(fleet.ids)} nodes", how)
    wall = time.monotonic() - t0
    cpu_controller = _cpu_s(me) - cpu_before
    cpu_nodes = [after - before for after, before in zip(fleet.cpu_s(), nodes_before, strict=True)]
    # The load generator gives each task's request time as its latency's start.
    first_request = min(runner.recorder.started[t] - lat for t, lat in zip(ids, latencies, strict=True))
    tasks = [store.get(t) for t in ids]
    assigned = [max(h.at for h in task.history if h.action == Action.ASSIGN.value) / 1000 for task in tasks]
    per_node = {node_id: 0 for node_id in fleet.ids}
    for task in tasks:
        if task.executor in per_node:
            per_node[task.executor] += 1
    strays = [t.id for t in tasks if t.executor not in per_node]
    if strays:
        raise RuntimeError(f"benchmark: {len(strays)} task(s) placed outside the fleet, e.g. {strays[0]}")
    to_assigned = max(assigned) - first_request
    figures: dict[str, Any] = {
        "nodes_count": len(fleet.ids),
        "nodes_capacity": fleet._capacity,
        "nodes_all_assigned_s": round(to_assigned, 3),
        "nodes_all_running_s": round(span, 3),
        "nodes_placed_per_s": round(len(ids) / to_assigned, 1) if to_assigned > 0 else None,
        "nodes_running_per_s": round(len(ids) / span, 1) if span > 0 else None,
        "nodes_tasks_per_node_min": min(per_node.values()),
        "nodes_tasks_per_node_max": max(per_node.values()),
        "nodes_cpu_controller_pct": round(100 * cpu_controller / wall, 1),
        "nodes_cpu_controller_ms_per_task": round(1000 * cpu_controller / len(ids), 3),
        "nodes_cpu_nodes_pct": round(100 * sum(cpu_nodes) / wall, 1),
        "nodes_cpu_node_max_pct": round(100 * max(cpu_nodes) / wall, 1),
    }
    t1 = time.time()
    runner.http.post("/api/tasks/cancel", params={"id": f"^N{runner.run_id}-"}, timeout=120).raise_for_status()
    runner.recorder.wait_exited(ids, bench.timeout_s)
    figures["nodes_all_gone_s"] = round(max(runner.recorder.exited[t] for t in ids) - t1, 3)
    return figures
