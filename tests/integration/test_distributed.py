"""The distributed shape: controller, two nodes and an edge as separate OS processes on real
Kafka-protocol, Valkey and MongoDB-wire servers, driven through the REST API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from skalds.testing import wait_until
from tests.conftest import PROBE, write_pool
from tests.probe_workers import read
from tests.procs import Cluster, online
from tests.servers import cluster_env

pytestmark = pytest.mark.integration


@pytest.fixture
def servers_env() -> dict[str, str]:
    """Environment pointing every process at the test servers, under names of its own."""
    return cluster_env()


@pytest.fixture
def cluster(tmp_path: Path, servers_env: dict[str, str]) -> Iterator[Cluster]:
    c = Cluster(tmp_path, servers_env)
    try:
        yield c
    finally:
        c.close()


def test_lifecycle_across_controller_two_nodes_and_an_edge(cluster: Cluster, tmp_path: Path) -> None:
    edge_journal = str(tmp_path / "edge.jsonl")
    edge_pool = write_pool(
        tmp_path / "edge.yaml", {"edge-cam": {"className": "ProbeWorker", "attachments": {"journal": edge_journal}}}
    )
    controller = cluster.start("controller", "controller")
    node_a = cluster.start("node", "node-a")
    cluster.start("node", "node-b")
    cluster.start("edge", "edge-1", pool=edge_pool)
    api = controller.http
    wait_until(
        lambda: online(api) == {"node-a", "node-b", "edge-1"},
        timeout_s=30,
        message="three nodes hold leases",
    )

    journal = str(tmp_path / "task.jsonl")
    r = api.post("/api/tasks", json={"id": "t1", "className": "ProbeWorker", "attachments": {"journal": journal}})
    assert r.status_code == 201, r.text
    wait_until(lambda: api.get("/api/tasks/t1").json()["lifecycleStatus"] == "Running", timeout_s=30, message="running")
    assert api.get("/api/tasks/t1").json()["executor"] in ("node-a", "node-b")

    api.patch("/api/tasks/t1/attachments", json={"attachments": {"level": 17}})
    wait_until(
        lambda: [e for e in read(journal) if e["event"] == "update" and e["level"] == 17],
        timeout_s=20,
        message="update handler on the node",
    )
    wait_until(lambda: api.get("/api/tasks/t1").json()["appliedVersion"] == 1, timeout_s=20, message="applied")
    assert api.post("/api/tasks/t1/pause").json()["lifecycleStatus"] == "Paused"
    wait_until(lambda: [e for e in read(journal) if e["event"] == "paused"], timeout_s=20, message="paused")
    api.post("/api/tasks/t1/resume")
    wait_until(lambda: [e for e in read(journal) if e["event"] == "resumed"], timeout_s=20, message="resumed")
    api.post("/api/tasks/t1/cancel")
    wait_until(lambda: [e for e in read(journal) if e["event"] == "release"], timeout_s=20, message="cancelled")

    # the edge runs its declared task under its own id; the controller sees and drives it
    wait_until(
        lambda: api.get("/api/tasks/edge-cam").json().get("lifecycleStatus") == "Running",
        timeout_s=30,
        message="edge task running",
    )
    assert api.get("/api/tasks/edge-cam").json()["executor"] == "edge-1"
    api.patch("/api/tasks/edge-cam/attachments", json={"attachments": {"level": 5}})
    wait_until(
        lambda: [e for e in read(edge_journal) if e["event"] == "update" and e["level"] == 5],
        timeout_s=20,
        message="controller updated the edge's task",
    )
    # the original's edge ignored a cancel of its own task; here it stops, and stays stopped
    assert api.post("/api/tasks/edge-cam/cancel").status_code == 200
    wait_until(lambda: [e for e in read(edge_journal) if e["event"] == "release"], timeout_s=20, message="stopped")
    time.sleep(1.5)  # an edge sweep or a stray event would start it again within this
    assert api.get("/api/tasks/edge-cam").json()["lifecycleStatus"] == "Cancelled"
    assert len([e for e in read(edge_journal) if e["event"] == "main"]) == 1

    # a controller crash loses nothing: the running task keeps running, state is in MongoDB
    r = api.post(
        "/api/tasks",
        json={"id": "t2", "className": "ProbeWorker", "attachments": {"journal": str(tmp_path / "t2.jsonl")}},
    )
    wait_until(lambda: api.get("/api/tasks/t2").json()["lifecycleStatus"] == "Running", timeout_s=30, message="t2")
    mains = wait_until(lambda: [e for e in read(str(tmp_path / "t2.jsonl")) if e["event"] == "main"], message="main")
    pid = mains[0]["pid"]
    controller.kill()
    controller.start()
    assert api.get("/api/tasks/t2").json()["lifecycleStatus"] == "Running"
    assert api.get("/api/tasks/t1").json()["lifecycleStatus"] == "Cancelled"
    assert len([e for e in read(str(tmp_path / "t2.jsonl")) if e["event"] == "main"]) == 1
    assert [e["pid"] for e in read(str(tmp_path / "t2.jsonl")) if e["event"] == "main"] == [pid]

    # a node crash: its tasks run on the other node
    executor = api.get("/api/tasks/t2").json()["executor"]
    victim = node_a if executor == "node-a" else next(p for p in cluster.procs if p.name == "node-b")
    victim.kill()
    other = "node-b" if executor == "node-a" else "node-a"
    wait_until(
        lambda: (
            api.get("/api/tasks/t2").json()["executor"] == other
            and api.get("/api/tasks/t2").json()["lifecycleStatus"] == "Running"
        ),
        timeout_s=30,
        message="failover to the other node",
    )


def test_the_seed_task_creation_example_dispatches_through_kafka(
    cluster: Cluster, tmp_path: Path, servers_env: dict[str, str]
) -> None:
    import os

    from pydantic import BaseModel

    from skalds.model.event import TaskEvent
    from skalds.model.task import Task
    from skalds.proxy.kafka import KafkaConfig, KafkaProxy, KafkaTopic
    from skalds.proxy.mongo import MongoConfig, MongoProxy
    from skalds.repository.repository import TaskRepository

    cluster.controller_and_node()

    class ProbeData(BaseModel):
        journal: str

    journal = str(tmp_path / "seed.jsonl")
    os.environ["DB_NAME"] = servers_env["DB_NAME"]
    try:
        task_rep = TaskRepository(MongoProxy(MongoConfig(host=servers_env["MONGO_HOST"])))
    finally:
        del os.environ["DB_NAME"]
    kafka_proxy = KafkaProxy(
        KafkaConfig(
            host=servers_env["KAFKA_HOST"],
            port=int(servers_env["KAFKA_PORT"]),
            topic_prefix=servers_env["KAFKA_TOPIC_PREFIX"],
        )
    )
    try:
        new_task = Task(id="task_1", class_name="ProbeWorker", source="Test", attachments=ProbeData(journal=journal))
        task_rep.create_task(new_task)
        task_event = TaskEvent(task_ids=[new_task.id])
        kafka_proxy.produce(KafkaTopic.TASK_ASSIGN, key=new_task.id, value=task_event.model_dump_json())
        wait_until(lambda: [e for e in read(journal) if e["event"] == "main"], timeout_s=30, message="seed task ran")
        assert task_rep.get_task_by_task_id("task_1").executor == "node-a"
    finally:
        kafka_proxy.close()
    assert PROBE  # the node and controller know ProbeWorker from the pool file


def test_redis_and_kafka_outages_are_survived_without_a_restart(cluster: Cluster, tmp_path: Path) -> None:
    from tests.servers import tansu, valkey

    api = cluster.controller_and_node().http
    journal = str(tmp_path / "a.jsonl")
    api.post("/api/tasks", json={"id": "a", "className": "ProbeWorker", "attachments": {"journal": journal}})
    wait_until(lambda: [e for e in read(journal) if e["event"] == "main"], timeout_s=30, message="a running")
    epoch = api.get("/api/tasks/a").json()["epoch"]

    redis = valkey.valkey()
    redis.stop()
    try:
        time.sleep(3.0)  # an outage longer than the 2 s lease TTL
    finally:
        redis.start()
    wait_until(lambda: online(api), timeout_s=30, message="lease renewed after Redis came back")

    with tansu.broker_down():
        time.sleep(3.0)
    journal_b = str(tmp_path / "b.jsonl")
    r = api.post("/api/tasks", json={"id": "b", "className": "ProbeWorker", "attachments": {"journal": journal_b}})
    assert r.status_code == 201, r.text
    wait_until(
        lambda: [e for e in read(journal_b) if e["event"] == "main"],
        timeout_s=60,
        message="a task created after the Kafka restart runs",
    )
    api.patch("/api/tasks/a/attachments", json={"attachments": {"level": 3}})
    wait_until(
        lambda: [e for e in read(journal) if e["event"] == "update"], timeout_s=30, message="update after outage"
    )
    task = api.get("/api/tasks/a").json()
    assert (task["lifecycleStatus"], task["epoch"]) == ("Running", epoch), "task a was never moved or restarted"
    assert len([e for e in read(journal) if e["event"] == "main"]) == 1


def test_an_edit_of_the_controllers_pool_file_reaches_a_worker_on_a_node_process(
    cluster: Cluster, tmp_path: Path
) -> None:
    journal = str(tmp_path / "declared.jsonl")
    pool = write_pool(
        tmp_path / "controller-pool.yaml",
        {"declared-1": {"className": "ProbeWorker", "attachments": {"journal": journal, "level": 1}}},
    )
    controller = cluster.start("controller", "controller", pool=pool)
    cluster.start("node", "node-a")
    api = controller.http
    wait_until(
        lambda: [e for e in read(journal) if e["event"] == "main"],
        timeout_s=30,
        message="the controller's declared task runs on the node",
    )
    assert api.get("/api/tasks/declared-1").json()["executor"] == "node-a"
    write_pool(pool, {"declared-1": {"className": "ProbeWorker", "attachments": {"journal": journal, "level": 9}}})
    wait_until(
        lambda: [e for e in read(journal) if e["event"] == "update" and e["level"] == 9],
        timeout_s=30,
        message="the edit reached the worker",
    )
    wait_until(
        lambda: api.get("/api/tasks/declared-1").json()["appliedVersion"] == 1, timeout_s=20, message="appliedVersion"
    )
    assert api.get("/api/system/config").json()["lastReload"]["ok"]
    wanted = {("controller", str(pool.resolve()), True), ("node-a", str(cluster.pool.resolve()), True)}
    wait_until(
        lambda: {(f["node"], f["path"], f["ok"]) for f in api.get("/api/system/config").json()["files"]} == wanted,
        message="the controller shows the node's watched file too",
    )


def test_a_task_that_ends_while_mongodb_is_down_is_recorded_when_it_is_back(cluster: Cluster, tmp_path: Path) -> None:
    from tests.servers import mongo

    api = cluster.controller_and_node().http
    journal = str(tmp_path / "short.jsonl")
    body = {
        "id": "short",
        "className": "ProbeWorker",
        "attachments": {"journal": journal, "mode": "finish", "steps": 30},
    }
    assert api.post("/api/tasks", json=body).status_code == 201
    wait_until(lambda: [e for e in read(journal) if e["event"] == "main"], timeout_s=30, message="running")

    server = mongo.mongo()
    server.stop()
    try:
        wait_until(
            lambda: [e for e in read(journal) if e["event"] == "release"],
            timeout_s=30,
            message="the worker ended while MongoDB was down",
        )
        node_log = next(p for p in cluster.procs if p.name == "node-a").log
        # longer than the store's 5 s timeout, so the write fails and waits in the outbox
        wait_until(lambda: "store write deferred" in node_log.read_text(), timeout_s=30, message="write deferred")
    finally:
        server.process.start()
    wait_until(
        lambda: api.get("/api/tasks/short").json().get("lifecycleStatus") == "Finished",
        timeout_s=30,
        message="the deferred Finished was written",
    )
