"""Faults of a distributed Skalds (controller and two nodes as processes on real Kafka-protocol,
Valkey and MongoDB-wire servers), judged from what really ran.

Nodes and the controller are killed, frozen and restarted; so are the three servers. The
figures are the same as for the standalone faults; for a fault only a lease expiry can reveal
(a dead or frozen node), the fault lasts until the lease TTL has run out and the monitor looked.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from skalds.testing import wait_until
from tests.faults.conftest import FAULT_OVERRIDES, Watch, assert_truthful
from tests.faults.observe import Journal
from tests.procs import Cluster, SkaldsProcess, online
from tests.servers import tansu, unavailable
from tests.servers.mongo import MongoServer, start_mongo
from tests.servers.process import ServerStartError
from tests.servers.valkey import ValkeyServer, start_valkey

pytestmark = pytest.mark.faults

LEASE_S = 2.5
#: How long after a node fault the controller may take to notice: the lease, a monitor round.
DETECT_S = LEASE_S + 0.5


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ValkeyServer, MongoServer]]:
    """A Valkey and a MongoDB-wire server of this module's own: the faults here stop and
    freeze them, which no other test must see."""
    try:
        redis, mongo = start_valkey(), start_mongo()
    except (ServerStartError, OSError) as exc:
        unavailable(f"fault servers: {exc}")
    yield redis, mongo
    redis.stop()
    mongo.stop()


@pytest.fixture
def cluster(tmp_path: Path, servers: tuple[ValkeyServer, MongoServer]) -> Iterator[Cluster]:
    redis, mongo = servers
    kafka_host, kafka_port = tansu.bootstrap_servers().split(":")
    unique = f"f{uuid.uuid4().hex[:8]}"
    env = {
        "KAFKA_HOST": kafka_host,
        "KAFKA_PORT": kafka_port,
        "KAFKA_TOPIC_PREFIX": f"{unique}.",
        "REDIS_HOST": redis.host,
        "REDIS_PORT": str(redis.port),
        "REDIS_KEY_PREFIX": unique,
        "MONGO_HOST": mongo.uri,
        "DB_NAME": unique,
    }
    c = Cluster(tmp_path, env, *FAULT_OVERRIDES, f"node.lease_ttl_s={LEASE_S}")
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def nodes(cluster: Cluster) -> dict[str, SkaldsProcess]:
    controller = cluster.start("controller", "controller")
    procs = {
        "controller": controller,
        "node-a": cluster.start("node", "node-a"),
        "node-b": cluster.start("node", "node-b"),
    }
    wait_until(lambda: len(online(controller.http)) == 2, timeout_s=30, message="two nodes up")
    return procs


@pytest.fixture
def watch(tmp_path: Path, nodes: dict[str, SkaldsProcess]) -> Iterator[Watch]:
    w = Watch(tmp_path, str(nodes["controller"].http.base_url))
    try:
        yield w
    finally:
        w.close()


def run_tasks(watch: Watch, count: int = 6) -> dict[str, str]:
    """Create ``count`` tasks, wait until all run; task id -> node."""
    for i in range(count):
        watch.create(f"t{i}")
    watch.running()
    return {c.task: c.node or "" for c in watch.journal.live()}


def on(placement: dict[str, str], node: str) -> list[str]:
    return [t for t, n in placement.items() if n == node]


@pytest.mark.parametrize("kill", ["SIGKILL", "SIGSTOP 4 s", "SIGSTOP 10 s"])
def test_a_node_killed_or_frozen_past_its_lease_hands_its_tasks_over_without_overlap(
    kill: str, nodes: dict[str, SkaldsProcess], watch: Watch
) -> None:
    # Observed before: a node frozen past its lease ran every task twice for (stop - lease)
    # after SIGCONT, and its stale copies were SIGKILLed after a false "no heartbeat".
    placement = run_tasks(watch)
    victim = nodes["node-a"]
    moved = on(placement, "node-a")
    assert moved, placement
    started = time.monotonic()
    if kill == "SIGKILL":
        victim.kill()
        fault_end = started + DETECT_S
    else:
        frozen_s = float(kill.split()[1])
        victim.proc.send_signal(signal.SIGSTOP)
        time.sleep(frozen_s)
        victim.proc.send_signal(signal.SIGCONT)
        fault_end = started + max(frozen_s, DETECT_S)
    wait_until(lambda: {c.task for c in watch.journal.live()} >= set(moved), timeout_s=30, message="moved tasks run")
    report = watch.report(f"node {kill}", (started, fault_end), settle_s=3)
    assert_truthful(report, attempts=len(moved))
    final = watch.final()
    assert {t for t in moved if final[t]["executor"] == "node-b"} == set(moved)
    if kill != "SIGKILL":
        stale = [c for c in watch.journal.snapshot() if c.node == "node-a" and c.task in moved]
        assert all(c.stopped_cleanly for c in stale), "a copy that stopped itself ran its release handler"
        assert "no heartbeat for" not in victim.log.read_text()
        wait_until(lambda: len(online(watch.api)) == 2, timeout_s=20, message="node-a back")


def test_a_node_frozen_for_less_than_its_lease_keeps_its_tasks(nodes: dict[str, SkaldsProcess], watch: Watch) -> None:
    run_tasks(watch)
    started = time.monotonic()
    nodes["node-a"].proc.send_signal(signal.SIGSTOP)
    time.sleep(0.8)
    nodes["node-a"].proc.send_signal(signal.SIGCONT)
    report = watch.report("node SIGSTOP 0.8 s", (started, time.monotonic()), settle_s=3)
    assert_truthful(report)
    assert report.copies == 6


def test_a_controller_killed_and_restarted_moves_nothing(nodes: dict[str, SkaldsProcess], watch: Watch) -> None:
    run_tasks(watch)
    started = time.monotonic()
    controller = nodes["controller"]
    controller.kill()
    time.sleep(LEASE_S)
    controller.start()
    report = watch.report("controller SIGKILL + restart", (started, time.monotonic()), settle_s=LEASE_S + 1)
    assert_truthful(report)
    assert report.copies == 6


def test_clean_node_restarts_in_a_loop_consume_no_retry(nodes: dict[str, SkaldsProcess], watch: Watch) -> None:
    run_tasks(watch)
    started = time.monotonic()
    for _ in range(3):
        node = nodes["node-a"]
        assert node.stop(signal.SIGTERM, timeout_s=30) == 0
        node.start()
        wait_until(lambda: len(online(watch.api)) == 2, timeout_s=30, message="node-a back")
    watch.running()
    report = watch.report("node SIGTERM + restart x3", (started, time.monotonic()))
    assert_truthful(report)


@pytest.mark.parametrize("fault", ["restart", "SIGSTOP 4 s"])
def test_valkey_away_moves_nothing_and_the_api_still_answers(
    fault: str, servers: tuple[ValkeyServer, MongoServer], nodes: dict[str, SkaldsProcess], watch: Watch
) -> None:
    # Observed before: GET /api/tasks answered 503 for 7.5 s while Valkey was away.
    redis = servers[0]
    run_tasks(watch)
    slowest = 0.0
    started = time.monotonic()
    if fault == "restart":
        redis.stop()
        time.sleep(3.0)
        redis.start()
    else:
        with redis.process.frozen():
            deadline = time.monotonic() + 4.0
            while time.monotonic() < deadline:
                sent = time.monotonic()
                assert watch.api.get("/api/tasks").status_code == 200
                slowest = max(slowest, time.monotonic() - sent)
                time.sleep(0.2)
    report = watch.report(f"Valkey {fault}", (started, time.monotonic()), settle_s=LEASE_S + 1)
    assert_truthful(report)
    assert report.copies == 6, "no task was restarted"
    assert slowest < 2.5, f"a read waited {slowest:.1f}s on the live state"


@pytest.mark.parametrize("fault", ["restart", "SIGSTOP 4 s"])
def test_kafka_away_moves_nothing_and_work_accepted_meanwhile_runs_after(
    fault: str, nodes: dict[str, SkaldsProcess], watch: Watch
) -> None:
    run_tasks(watch)
    started = time.monotonic()
    if fault == "restart":
        with tansu.broker_down():
            time.sleep(2.0)
            watch.create("during")
    else:
        with tansu.frozen():
            time.sleep(1.0)
            watch.create("during")
            time.sleep(3.0)
    wait_until(lambda: "during" in {c.task for c in watch.journal.live()}, timeout_s=60, message="runs after")
    report = watch.report(f"Kafka {fault}", (started, time.monotonic()))
    assert_truthful(report)
    assert report.copies == 7


@pytest.mark.parametrize("fault", ["restart", "SIGSTOP 4 s"])
def test_mongodb_away_or_slow_moves_nothing(
    fault: str, servers: tuple[ValkeyServer, MongoServer], nodes: dict[str, SkaldsProcess], watch: Watch
) -> None:
    # Observed before: the lease was renewed after a store read, so a store answering in 4 s
    # lost a healthy node its lease.
    mongo = servers[1]
    run_tasks(watch)
    started = time.monotonic()
    if fault == "restart":
        mongo.stop()
        time.sleep(2.0)
        mongo.start()
    else:
        with mongo.process.frozen():
            time.sleep(4.0)
    report = watch.report(f"MongoDB {fault}", (started, time.monotonic()), settle_s=LEASE_S + 1)
    assert_truthful(report)
    assert report.copies == 6


def test_a_second_node_with_a_live_nodes_id_is_refused_and_changes_nothing(
    cluster: Cluster, nodes: dict[str, SkaldsProcess], watch: Watch
) -> None:
    run_tasks(watch)
    started = time.monotonic()
    with pytest.raises(AssertionError, match="exited") as refused:
        cluster.start("node", "node-a")
    log = str(refused.value)
    assert f"node.id 'node-a' is in use by pid {nodes['node-a'].proc.pid}" in log
    report = watch.report("second node with a live node's id", (started, time.monotonic()))
    assert_truthful(report)
    assert report.copies == 6


def test_a_patch_larger_than_an_event_reaches_the_worker_through_the_store(
    tmp_path: Path, cluster: Cluster, watch: Watch
) -> None:
    # Observed before: a PATCH over the broker's message limit was stored (desiredVersion +1),
    # answered 503, and appliedVersion never followed.
    run_tasks(watch, count=1)
    started = time.monotonic()
    big = "x" * 600_000  # over controller.max_event_bytes (256 KiB), under the request limit
    r = watch.api.patch("/api/tasks/t0/attachments", json={"attachments": {"label": "big", "padding": big}})
    assert r.status_code == 200, r.text[:300]
    wait_until(lambda: watch.api.get("/api/tasks/t0").json()["appliedVersion"] == 1, timeout_s=20, message="applied")
    (update,) = [u for u in watch.journal.updates if u["e"] == "update_begin"]
    assert update["size"] == 600_000
    report = watch.report("PATCH of 600 kB (over the event limit)", (started, time.monotonic()), settle_s=0.5)
    assert_truthful(report)


def test_an_edge_frozen_past_its_lease_keeps_its_own_tasks_running_and_adopts_them_back(
    tmp_path: Path, cluster: Cluster, nodes: dict[str, SkaldsProcess], watch: Watch
) -> None:
    # An edge's declared tasks run nowhere else: its workers keep running through a freeze,
    # the controller shows the task waiting for its node, and the edge takes it back as it is.
    from tests.conftest import write_pool

    declared = {"edge-cam": {"className": "FaultWorker", "attachments": {"journal": str(watch.journal_path)}}}
    edge = cluster.start("edge", "edge-1", pool=write_pool(tmp_path / "edge.yaml", declared))
    watch.tasks.add("edge-cam")
    watch.running()
    started = time.monotonic()
    edge.proc.send_signal(signal.SIGSTOP)
    time.sleep(5.0)
    edge.proc.send_signal(signal.SIGCONT)
    wait_until(
        lambda: watch.api.get("/api/tasks/edge-cam").json()["lifecycleStatus"] == "Running",
        timeout_s=20,
        message="adopted",
    )
    report = watch.report("edge SIGSTOP 5 s", (started, time.monotonic()), settle_s=2)
    assert_truthful(report)
    assert report.copies == 1, "the running copy was kept, not restarted"
    assert watch.api.get("/api/tasks/edge-cam").json()["executor"] == "edge-1"


def _role(controller: SkaldsProcess) -> str:
    return str(controller.http.get("/api/system/config").json()["controller"]["role"])


class TwoControllers:
    """Two controllers and two nodes on the servers, and a journal of what the workers ran."""

    def __init__(self, cluster: Cluster, tmp_path: Path, room: int) -> None:
        self.controllers = [cluster.start("controller", "controller-1"), cluster.start("controller", "controller-2")]
        for node_id in ("node-a", "node-b"):
            cluster.start("node", node_id, f"node.capacity={room}")  # room for every task: none waits for a slot
        wait_until(lambda: len(online(self.controllers[0].http)) == 2, timeout_s=30, message="two nodes up")
        assert sorted(_role(c) for c in self.controllers) == ["leader", "standby"]
        self.journal_path = tmp_path / "journal.jsonl"
        self.journal = Journal(self.journal_path)
        self.created: list[str] = []

    def leader(self) -> SkaldsProcess:
        return next(c for c in self.controllers if _role(c) == "leader")

    def other(self, than: SkaldsProcess) -> SkaldsProcess:
        return next(c for c in self.controllers if c is not than)

    def create(self, via: SkaldsProcess, task_id: str) -> None:
        body = {"id": task_id, "className": "FaultWorker", "attachments": {"journal": str(self.journal_path)}}
        r = via.http.post("/api/tasks", json=body)
        assert r.status_code == 201, r.text
        self.created.append(task_id)

    def started(self, task_id: str) -> float:
        """When the task's first copy started (monotonic), once it has."""
        wait_until(lambda: task_id in {c.task for c in self.journal.live()}, timeout_s=30, message=f"{task_id} runs")
        return next(c.start for c in self.journal.snapshot() if c.task == task_id)

    def assert_each_ran_once(self) -> None:
        """Every created task runs, each in exactly one copy, Running, no retry consumed."""
        wait_until(
            lambda: {c.task for c in self.journal.live()} >= set(self.created),
            timeout_s=30,
            message="every task runs",
        )
        time.sleep(1.0)  # a second placement, if there were one, would have started by now
        copies = self.journal.snapshot()
        runs = {task: [c for c in copies if c.task == task] for task in self.created}
        twice = {task: [(c.node, c.epoch) for c in cs] for task, cs in runs.items() if len(cs) != 1}
        assert not twice, f"tasks placed more than once: {twice}"
        api = self.leader().http
        tasks = {t["id"]: t for t in api.get("/api/tasks", params={"limit": 1000}).json()["items"]}
        assert {t: tasks[t]["lifecycleStatus"] for t in self.created} == dict.fromkeys(self.created, "Running")
        assert all(tasks[t]["attempt"] == 0 for t in self.created), "no retry consumed"


def test_two_controllers_either_killed_at_any_moment_place_every_task_once(cluster: Cluster, tmp_path: Path) -> None:
    # Two controllers behind one address: one leads (places, judges nodes), the other serves
    # the API and stands by. Either is SIGKILLed at a random moment after a burst of creates
    # through it; what it had not placed yet, the other places, and nothing runs twice.
    cycles = int(os.environ.get("SKALDS_STANDBY_CYCLES", "3"))
    two = TwoControllers(cluster, tmp_path, room=5 * cycles + 8)
    rng = random.Random(11)
    takeovers: list[float] = []
    try:
        for cycle in range(cycles):
            leader = two.leader()
            kill_leader = cycle % 3 != 1  # now and then the standby dies instead
            victim = leader if kill_leader else two.other(leader)
            survivor = two.other(victim)
            for i in range(4):
                two.create(victim, f"c{cycle}-burst{i}")
            time.sleep(rng.uniform(0.0, 0.15))  # the kill lands anywhere in the placement
            victim.kill()
            killed = time.monotonic()
            probe = f"c{cycle}-probe"
            two.create(survivor, probe)
            started = two.started(probe)
            if kill_leader:
                takeovers.append(started - killed)
            assert _role(survivor) == "leader"
            victim.start()  # back, as the standby
            assert _role(victim) == "standby"
        two.assert_each_ran_once()
    finally:
        two.journal.close()
    print(
        f"standby takeover, SIGKILL of the leader -> a task created through the other runs: "
        f"median {statistics.median(takeovers):.2f}s, worst {max(takeovers):.2f}s over {len(takeovers)}"
    )


def test_a_leader_frozen_past_its_lease_stands_by_when_it_wakes_and_nothing_runs_twice(
    cluster: Cluster, tmp_path: Path
) -> None:
    # SIGSTOP of the leader mid-burst for longer than its lease: the standby takes over and
    # places what waits; the old leader, woken, finds the lease taken and places nothing.
    two = TwoControllers(cluster, tmp_path, room=16)
    try:
        leader = two.leader()
        standby = two.other(leader)
        for i in range(4):
            two.create(leader, f"burst{i}")
        leader.proc.send_signal(signal.SIGSTOP)
        frozen = time.monotonic()
        two.create(standby, "during")
        assert two.started("during") - frozen < 10, "the standby took over"
        leader.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: _role(leader) == "standby", timeout_s=10, message="the woken leader stands by")
        assert _role(standby) == "leader"
        two.create(leader, "after")  # created through the old leader, placed by the new one
        two.assert_each_ran_once()
    finally:
        two.journal.close()
