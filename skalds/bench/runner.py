"""One benchmark job: start Skalds, drive it through its REST API and its pool file, measure.

Phases: tasks created one at a time (dispatch latency); N tasks created at once by a
separate client process (latency under load, task starts per second, time until all run);
optionally a larger burst through the batch endpoint (``bench.large_burst``); a steady state
with N tasks running (CPU of the Skalds process and its launcher, USS per worker, heartbeat
age); attachment updates over HTTP and by saving the pool YAML (until the update handler
returned); cancels (until the process is gone); optionally a larger burst through the batch
endpoint; on the distributed backends, the failover of a killed node; the time each kind of
Skalds process needs from its start until it is ready (:mod:`skalds.bench.startup`).
``bench.phases`` picks among them; ``makespan`` (not in the default list) runs N short tasks
of ``bench.task_s`` each on one node of ``node.capacity`` slots and reports how long all of
them took against the floor N x task_s / capacity, and how fast a freed slot was filled.
``nodes`` (not in the default list either; distributed backends only) places N tasks from a
controller in this process on ``bench.nodes`` node processes (:mod:`skalds.bench.nodes`).
Worker-side times come through the status events nodes publish. Results go to
``results.json`` in the Hydra job directory, and a table of them to stdout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from omegaconf import DictConfig, OmegaConf

from skalds.bench.harness import Progress, job_dir, job_info, machine_info, serve
from skalds.bench.loadgen import PacedClient
from skalds.bench.nodes import NodeFleet, node_capacity, require_distributed, run_nodes_phase
from skalds.bench.probe import StatusRecorder
from skalds.bench.startup import process_command, process_env, startup_figures
from skalds.bench.stats import summarize
from skalds.bench.tables import run_text
from skalds.config import settings_from
from skalds.errors import ConfigError
from skalds.settings import load_settings
from skalds.system import SkaldsSystem

logger = logging.getLogger(__name__)

BENCH_CLASS = {"BenchWorker": "skalds.bench.worker:BenchWorker"}
#: The phases, in the order they run (``makespan`` on a system of its own, last).
PHASES = (
    "dispatch",
    "burst",
    "steady",
    "updates",
    "yaml_updates",
    "event_stream",
    "cancels",
    "large_burst",
    "failover",
    "startup",
    "nodes",
    "makespan",
)
#: The phases run unless ``bench.phases`` says otherwise (not the two on systems of their own).
DEFAULT_PHASES = PHASES[:-2]


@dataclass(frozen=True)
class BenchSettings:
    """The ``bench:`` config group."""

    tasks: int = 100
    samples: int = 20
    steady_s: float = 5.0
    http_concurrency: int = 8
    timeout_s: float = 120.0
    memory_sample: int = 50
    failover_tasks: int = 10
    phases: tuple[str, ...] = DEFAULT_PHASES
    #: How long each task of the makespan phase runs, in seconds.
    task_s: float = 1.0
    event_samples: int = 100
    start_samples: int = 100
    large_burst: int = 0
    large_burst_via: str = "batch"
    startup_samples: int = 3
    #: How many node processes the nodes phase starts beside the controller.
    nodes: int = 10

    @classmethod
    def from_config(cls, cfg: DictConfig) -> BenchSettings:
        raw = OmegaConf.to_container(cfg.get("bench") or {}, resolve=True)
        if not isinstance(raw, dict):
            raise ConfigError("bench: must be a mapping (conf/mode/bench.yaml)", key="bench")
        values = {str(k): v for k, v in raw.items()}
        if "phases" in values:
            phases = values["phases"]
            values["phases"] = tuple(phases) if isinstance(phases, list | tuple) else (str(phases),)
        bench = settings_from(cls, values, "bench", "conf/mode/bench.yaml")
        if bench.tasks < 1 or bench.samples < 1 or bench.start_samples < 1:
            raise ConfigError("bench.tasks, bench.samples, bench.start_samples: must be >= 1", key="bench.tasks")
        if bench.large_burst_via not in ("batch", "posts"):
            raise ConfigError("bench.large_burst_via: batch or posts", key="bench.large_burst_via")
        unknown = [p for p in bench.phases if p not in PHASES]
        if unknown:
            raise ConfigError(
                f"bench.phases: unknown phase {unknown[0]!r}; known: {', '.join(PHASES)}", key="bench.phases"
            )
        if bench.nodes < 1:
            raise ConfigError(f"bench.nodes: must be >= 1 (got {bench.nodes})", key="bench.nodes")
        if bench.task_s <= 0:
            raise ConfigError(f"bench.task_s: must be > 0 (got {bench.task_s})", key="bench.task_s")
        return bench


class Bench:
    """One benchmark run on a started system."""

    def __init__(self, system: SkaldsSystem, bench: BenchSettings, base_url: str, pool_file: Path) -> None:
        self.system = system
        self.bench = bench
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.pool_file = pool_file
        self.recorder = StatusRecorder(system.backends.bus)
        self.run_id = uuid.uuid4().hex[:6]
        self.ids = [f"b{self.run_id}-{i:05d}" for i in range(bench.tasks)]
        self.figures: dict[str, Any] = {}

    # ---- phases ------------------------------------------------------------------
    def dispatch(self) -> None:
        """One task at a time: POST -> worker running, then cancel it (unloaded latency).
        ``bench.start_samples`` of them: 100 name a p99."""
        lat = []
        progress = Progress("dispatch, one at a time", self.bench.start_samples)
        with PacedClient(str(self.http.base_url)) as client:
            for i in range(self.bench.start_samples):
                task_id = f"s{self.run_id}-{i:04d}"
                body = {"id": task_id, "className": "BenchWorker", "attachments": {"value": 0}}
                sent, _ = client.request("POST", "/api/tasks", body)
                self.recorder.wait_started([task_id], self.bench.timeout_s)
                lat.append(self.recorder.started[task_id] - sent)
                client.request("POST", f"/api/tasks/{task_id}/cancel")
                self.recorder.wait_exited([task_id], self.bench.timeout_s)
                progress.update(i + 1)
        self.figures["dispatch_ms"] = summarize(lat, 1000)

    def burst(self) -> None:
        """Create all N tasks at once (from a separate client process, one POST per task);
        measure POST -> worker running, task starts per second, and the time from the first
        POST until all N run."""
        latencies, span = self._at_once(self.ids, f"{len(self.ids)} tasks at once", ["posts"])
        self.figures["burst_dispatch_ms"] = summarize(latencies, 1000)
        self.figures["starts_per_s"] = round(len(self.ids) / span, 1) if span > 0 else None
        self.figures["burst_all_running_s"] = round(span, 3)

    def large_burst(self) -> None:
        """``bench.large_burst`` tasks at once (through ``POST /api/tasks/batch`` in batches of
        ``controller.max_batch``, or one POST each): until all run; then all cancelled by one
        filter request, until every process is gone."""
        n = self.bench.large_burst
        ids = [f"L{self.run_id}-{i:05d}" for i in range(n)]
        how = self.bench.large_burst_via
        args = [how, str(self.system.settings.max_batch)] if how == "batch" else [how]
        latencies, span = self._at_once(ids, f"{n} tasks at once ({how})", args)
        self.figures["large_burst_dispatch_ms"] = summarize(latencies, 1000)
        self.figures["large_burst_all_running_s"] = round(span, 3)
        t0 = time.time()
        self.http.post("/api/tasks/cancel", params={"id": f"^L{self.run_id}-"}, timeout=120).raise_for_status()
        self.recorder.wait_exited(ids, self.bench.timeout_s)
        self.figures["large_burst_all_gone_s"] = round(max(self.recorder.exited[t] for t in ids) - t0, 3)

    def _at_once(self, ids: list[str], label: str, how: list[str]) -> tuple[list[float], float]:
        """Create ``ids`` at once from the load generator; return each task's request ->
        running latency (s), and the time from the first request until all run (s)."""
        bodies = [{"id": t, "className": "BenchWorker", "attachments": {"value": 0}} for t in ids]
        progress = Progress(label, len(ids))
        loadgen = subprocess.run(
            [
                sys.executable,
                "-m",
                "skalds.bench.loadgen",
                str(self.http.base_url),
                str(self.bench.http_concurrency),
                *how,
            ],
            input=json.dumps(bodies),
            capture_output=True,
            text=True,
            timeout=self.bench.timeout_s,
            check=False,
        )
        if loadgen.returncode != 0:
            raise RuntimeError(f"benchmark load generator failed: {loadgen.stderr[-2000:]}")
        posted: dict[str, float] = json.loads(loadgen.stdout)
        started = self.recorder.started
        self.recorder.wait_started(ids, self.bench.timeout_s, progress.update)
        latencies = [started[t] - posted[t] for t in ids]
        return latencies, max(started[t] for t in ids) - min(posted.values())

    def steady(self) -> None:
        """With N tasks running: CPU of the Skalds process and its launcher, memory per
        worker, heartbeat age."""
        import psutil

        me = psutil.Process()
        launcher = psutil.Process(self.system.node.supervisor.launcher.pid) if self.system.node else None
        # Zygotes (forked ahead, waiting to become a worker) are not workers yet.
        workers = [p for p in launcher.children() if "zygote" not in p.name()] if launcher else []
        before = me.cpu_times(), launcher.cpu_times() if launcher else None
        t0 = time.monotonic()
        progress = Progress("steady state", int(self.bench.steady_s * 10))
        while (elapsed := time.monotonic() - t0) < self.bench.steady_s:
            progress.update(int(elapsed * 10))
            time.sleep(0.1)
        progress.update(progress.total)
        wall = time.monotonic() - t0
        after = me.cpu_times(), launcher.cpu_times() if launcher else None
        self.figures["cpu_skalds_pct"] = round(100 * (sum(after[0][:2]) - sum(before[0][:2])) / wall, 2)
        if launcher and before[1] and after[1]:
            self.figures["cpu_launcher_pct"] = round(100 * (sum(after[1][:2]) - sum(before[1][:2])) / wall, 2)
        uss = []
        for proc in workers[: self.bench.memory_sample]:
            try:
                uss.append(proc.memory_full_info().uss)
            except psutil.Error:
                continue
        self.figures["worker_uss_mib"] = summarize(uss, 1 / 2**20, 2)
        now = time.time()
        beats = self.system.backends.live.heartbeats(self.ids)
        self.figures["heartbeat_age_ms"] = summarize([now - b.at / 1000 for b in beats.values()], 1000, 1)
        self.figures["heartbeats_seen"] = len(beats)

    def updates(self) -> None:
        """PATCH attachments -> update handler returned, one at a time."""
        lat = []
        progress = Progress("updates over HTTP", self.bench.samples)
        with PacedClient(str(self.http.base_url)) as client:
            for i in range(self.bench.samples):
                task_id = self.ids[i % len(self.ids)]
                body = {"attachments": {"value": i + 1}}
                sent, task = client.request("PATCH", f"/api/tasks/{task_id}/attachments", body)
                lat.append(self.recorder.wait_applied(task_id, task["desiredVersion"], self.bench.timeout_s) - sent)
                progress.update(i + 1)
        self.figures["update_ms"] = summarize(lat, 1000)

    def yaml_updates(self) -> None:
        """Save the pool file with a new value -> update handler returned."""
        lat = []
        progress = Progress("updates by saving YAML", self.bench.samples)
        # The declared task may have started before the recorder listened: ask the store.
        service = self.system.service
        if service is None:
            raise RuntimeError("the benchmark's system has no task service")
        self.recorder.wait(
            lambda: service.get("bench-yaml").lifecycle_status.value == "Running",
            self.bench.timeout_s,
            "declared task running",
        )
        for i in range(self.bench.samples):
            version = service.get("bench-yaml").desired_version + 1
            saved = write_pool(self.pool_file, value=i + 1)  # timed from the save, not the YAML dump
            lat.append(self.recorder.wait_applied("bench-yaml", version, self.bench.timeout_s) - saved)
            progress.update(i + 1)
        self.figures["yaml_update_ms"] = summarize(lat, 1000)

    def event_stream(self) -> None:
        """A state change -> its event received by a client of ``GET /api/events``, one at a
        time (pause and resume in turn): from the store write (the answer's
        ``updateDateTime``) and from the request."""
        task_id = self.ids[0]
        arrived: queue.Queue[tuple[str, float]] = queue.Queue()
        listening = threading.Event()
        client = httpx.Client(base_url=self.http.base_url, timeout=None)
        stream = client.stream("GET", "/api/events", params={"task": task_id})

        def listen() -> None:
            try:
                with stream as response:
                    kind = None
                    for line in response.iter_lines():
                        if line.startswith("event:"):
                            kind = line[6:].strip()
                        elif line == "" and kind is not None:
                            arrived.put((kind, time.time()))
                            listening.set()
                            kind = None
            except (httpx.HTTPError, RuntimeError):
                pass  # closed below, at the end of the phase

        thread = threading.Thread(target=listen, name="bench-events", daemon=True)
        thread.start()
        if not listening.wait(self.bench.timeout_s):
            raise TimeoutError("benchmark: the event stream did not open")
        from_write, from_request = [], []
        progress = Progress("event stream", self.bench.event_samples)
        with PacedClient(str(self.http.base_url)) as control:
            for i in range(self.bench.event_samples):
                action, wanted = ("pause", "task.paused") if i % 2 == 0 else ("resume", "task.resumed")
                sent, task = control.request("POST", f"/api/tasks/{task_id}/{action}")
                while True:
                    kind, at = arrived.get(timeout=self.bench.timeout_s)
                    if kind == wanted:
                        break
                from_write.append(at - task["updateDateTime"] / 1000)
                from_request.append(at - sent)
                progress.update(i + 1)
        self.http.post(f"/api/tasks/{task_id}/resume")  # as it was
        client.close()  # ends the stream; the listening thread returns
        self.figures["event_after_write_ms"] = summarize(from_write, 1000)
        self.figures["event_after_request_ms"] = summarize(from_request, 1000)

    def cancels(self) -> None:
        """Cancel -> worker process gone, one at a time; then the rest at once."""
        lat = []
        sample = self.ids[: self.bench.samples]
        progress = Progress("cancels", len(sample))
        with PacedClient(str(self.http.base_url)) as client:
            for i, task_id in enumerate(sample):
                sent, _ = client.request("POST", f"/api/tasks/{task_id}/cancel")
                self.recorder.wait_exited([task_id], self.bench.timeout_s)
                lat.append(self.recorder.exited[task_id] - sent)
                progress.update(i + 1)
        self.figures["cancel_ms"] = summarize(lat, 1000)
        self.cancel_rest()

    def cancel_rest(self) -> None:
        """Cancel whatever still runs and wait for the processes to go."""
        rest = [t for t in self.ids if t not in self.recorder.exited]
        with ThreadPoolExecutor(self.bench.http_concurrency) as pool:
            list(pool.map(lambda t: self.http.post(f"/api/tasks/{t}/cancel"), rest))
        self.recorder.wait_exited(rest, self.bench.timeout_s)

    def failover(self, node_id: str, victim_cmd: list[str], env: dict[str, str]) -> None:
        """Start a second node, let it take some tasks, SIGKILL it; measure kill -> each of
        its tasks running elsewhere (a new epoch started)."""
        ids = [f"f{self.run_id}-{i:03d}" for i in range(self.bench.failover_tasks)]
        with open(job_dir() / "failover-node.log", "ab") as log:
            victim = subprocess.Popen(victim_cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            live, store = self.system.backends.live, self.system.backends.store
            self.recorder.wait(
                lambda: any(n.id == node_id for n in live.nodes()), self.bench.timeout_s, "second node up"
            )
            for task_id in ids:
                body = {"id": task_id, "className": "BenchWorker", "attachments": {"value": 0}}
                self.http.post("/api/tasks", json=body).raise_for_status()
            self.recorder.wait_started(ids, self.bench.timeout_s)
            on_victim = {t: task.epoch for t in ids if (task := store.get(t)).executor == node_id}
            if not on_victim:
                placed = {t: store.get(t).executor for t in ids}
                raise RuntimeError(f"benchmark: no task landed on the node to kill ({node_id}): {placed}")
            killed_at = time.time()
            victim.kill()

            def moved_at(task_id: str) -> float | None:
                starts = [
                    at
                    for (t, e), at in self.recorder.started_at_epoch.items()
                    if t == task_id and e > on_victim[task_id]
                ]
                return min(starts) if starts else None

            self.recorder.wait(
                lambda: all(moved_at(t) is not None for t in on_victim),
                self.bench.timeout_s,
                "the killed node's tasks running elsewhere",
            )
            self.figures["failover_s"] = summarize([moved_at(t) - killed_at for t in on_victim], 1, 3)  # type: ignore[operator]
        finally:
            if victim.poll() is None:
                victim.kill()
            victim.wait()
            for task_id in ids:
                self.http.post(f"/api/tasks/{task_id}/cancel")

    def makespan(self, capacity: int) -> None:
        """N tasks of ``task_s`` each, created at once on a node of ``capacity`` slots: the
        time from the first POST to the last task's end, against the floor N x task_s /
        capacity; and each refill: the k-th task to end -> the (capacity + k)-th to start."""
        ids = [f"m{self.run_id}-{i:05d}" for i in range(self.bench.tasks)]
        bodies = [{"id": t, "className": "BenchWorker", "attachments": {"run_s": self.bench.task_s}} for t in ids]
        progress = Progress(f"{len(ids)} tasks of {self.bench.task_s:g}s", len(ids))
        t0 = time.time()
        with ThreadPoolExecutor(self.bench.http_concurrency) as pool:
            list(pool.map(lambda body: self.http.post("/api/tasks", json=body).raise_for_status(), bodies))
        floor = len(ids) * self.bench.task_s / capacity
        timeout = max(self.bench.timeout_s, 10 * floor)

        def all_ended() -> bool:
            done = sum(t in self.recorder.exited for t in ids)
            progress.update(done)
            return done == len(ids)

        self.recorder.wait(all_ended, timeout, f"{len(ids)} short tasks ended")
        ends = sorted(self.recorder.exited[t] for t in ids)
        starts = sorted(self.recorder.started[t] for t in ids)
        refills = [start - end for start, end in zip(starts[capacity:], ends, strict=False)]
        self.figures["makespan_s"] = round(ends[-1] - t0, 2)
        self.figures["makespan_floor_s"] = round(floor, 2)
        self.figures["refill_ms"] = summarize(refills, 1000)

    def close(self) -> None:
        self.recorder.close()
        self.http.close()


def write_pool(path: Path, value: int = 0, *, declared: bool = True) -> float:
    """The benchmark's pool file: the bench class and (``declared``) one declared task, saved
    atomically, as editors do. Returns the UNIX time of the save (the rename that makes the
    new content the file's)."""
    tasks = {"bench-yaml": {"className": "BenchWorker", "attachments": {"value": value}}} if declared else {}
    pool = {"name": "bench", "classes": BENCH_CLASS, "tasks": tasks}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(pool, sort_keys=False))
    saved = time.time()
    tmp.replace(path)
    return saved


def run_bench(cfg: DictConfig) -> dict[str, Any]:
    """Run one benchmark job, write ``results.json`` to the job directory and print its
    figures as a table on stdout."""
    bench = BenchSettings.from_config(cfg)
    out = job_dir()
    out.mkdir(parents=True, exist_ok=True)
    pool_file = out / "bench_pool.yaml"
    write_pool(pool_file)
    settings = load_settings(cfg)
    if "nodes" in bench.phases:
        require_distributed(settings)
    started = time.time()
    figures: dict[str, Any] = {}
    main_phases = [p for p in bench.phases if p not in ("nodes", "makespan")]
    if main_phases:
        # Every task of these phases runs at once: the node has a slot for each.
        capacity = max(settings.node.capacity, bench.tasks + 1, bench.large_burst + 1)
        with _running(settings, bench, pool_file, out / "data", capacity) as runner:
            for phase in main_phases:
                if phase == "failover":
                    if settings.backend.get("kind") == "distributed":
                        node_id = f"bench-victim-{runner.run_id}"
                        runner.failover(node_id, _victim_command(settings, node_id, pool_file), process_env(settings))
                elif phase == "large_burst":
                    if bench.large_burst > 0:
                        runner.large_burst()
                elif phase == "startup":
                    if bench.startup_samples > 0:
                        live = runner.system.backends.live
                        runner.figures.update(
                            startup_figures(settings, live, bench.startup_samples, out, bench.timeout_s)
                        )
                else:
                    getattr(runner, phase)()
            figures.update(runner.figures)
    if "nodes" in bench.phases:
        figures.update(_nodes(settings, bench, out))
    if "makespan" in bench.phases:
        capacity = settings.node.capacity
        bare_pool = out / "makespan_pool.yaml"
        write_pool(bare_pool, declared=False)  # every slot for the short tasks
        with _running(settings, bench, bare_pool, out / "makespan-data", capacity) as runner:
            runner.makespan(capacity)
            figures.update(runner.figures)
    results = {
        "config": {
            "tasks": bench.tasks,
            "samples": bench.samples,
            "steady_s": bench.steady_s,
            "start_samples": bench.start_samples,
            "large_burst": bench.large_burst,
            "backend": settings.backend.get("kind"),
            "dispatch": settings.dispatch_policy,
            "heartbeat_interval_s": settings.node.supervision.heartbeat_interval_s,
            **({"capacity": settings.node.capacity, "task_s": bench.task_s} if "makespan" in bench.phases else {}),
            **({"nodes": bench.nodes} if "nodes" in bench.phases else {}),
        },
        "job": job_info(),
        "machine": machine_info(),
        "started_at": started,
        "duration_s": round(time.time() - started, 2),
        "figures": figures,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    logger.info("benchmark results in %s: %s", out / "results.json", json.dumps(results["figures"]))
    print(f"{run_text(results)}\nresults: {out / 'results.json'}\n", flush=True)
    return results


def _nodes(settings: Any, bench: BenchSettings, out: Path) -> dict[str, Any]:
    """The nodes phase: a controller in this process (no node of its own), ``bench.nodes``
    node processes beside it; see :mod:`skalds.bench.nodes`."""
    pool = out / "nodes_pool.yaml"
    write_pool(pool, declared=False)  # every slot for the phase's tasks
    capacity = node_capacity(bench.tasks, bench.nodes)
    figures: dict[str, Any] = {}
    with _running(settings, bench, pool, out / "nodes-data", capacity, mode="controller") as runner:
        fleet = NodeFleet(settings, runner.run_id, bench.nodes, capacity, pool, out)
        try:
            fleet.start()
            figures.update(run_nodes_phase(runner, fleet))
        finally:
            figures["nodes_left_running"] = fleet.stop()
    return figures


def _victim_command(settings: Any, node_id: str, pool_file: Path) -> list[str]:
    """The command of the node the failover phase kills: this run's settings, its own id."""
    return process_command(
        settings,
        "node",
        f"node.id={node_id}",
        f"reload.pool_file={pool_file}",
        f"node.lease_ttl_s={settings.node.lease.ttl_s}",
        f"node.heartbeat_interval_s={settings.node.supervision.heartbeat_interval_s}",
        "log_level=WARNING",
    )


@contextlib.contextmanager
def _running(
    settings: Any, bench: BenchSettings, pool_file: Path, data: Path, capacity: int, mode: str = "bench"
) -> Iterator[Bench]:
    """A system of the benchmark's settings with nodes of ``capacity`` slots, its API served,
    and a :class:`Bench` on it; stopped when the block ends. ``mode`` ``controller``: the
    system runs no node of its own."""
    backend = dict(settings.backend)
    if backend.get("kind") == "local":
        backend["sqlite_path"] = str(data / "tasks.db")  # a fresh store per job
    settings = dataclasses.replace(
        settings,
        mode=mode,
        node=dataclasses.replace(settings.node, capacity=capacity),
        backend=backend,
        pool_file=pool_file,
        tasks_file=None,
        pool_classes=dict(BENCH_CLASS),
    )
    system = SkaldsSystem(settings).start()
    server = thread = None
    runner: Bench | None = None
    try:
        server, thread, url = serve(system.app)
        runner = Bench(system, bench, url, pool_file)
        yield runner
    finally:
        if runner is not None:
            runner.close()
        if server is not None:
            server.should_exit = True
            thread.join(timeout=10)  # type: ignore[union-attr]
        system.stop()
