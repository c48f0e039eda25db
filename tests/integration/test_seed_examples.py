"""The seed README's examples (examples/) run as a user would run them: on the embedded
backends, and against the real test servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from skalds.errors import InvalidTransition
from skalds.proxy.mongo import MongoConfig, MongoProxy
from skalds.repository.repository import TaskRepository
from skalds.testing import wait_until
from tests.procs import online
from tests.servers import cluster_env, free_port

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class Script:
    """An example script run as a process, its output in a log file."""

    def __init__(self, name: str, cwd: Path, env: dict[str, str], argv: list[str] | None = None) -> None:
        self.log = cwd / f"{name}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                argv or [sys.executable, str(EXAMPLES / name)],
                cwd=cwd,
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        assert self.proc.poll() is None, self.log.read_text()
        return self.log.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


#: Unsets the servers a developer's shell may name: an empty variable means "not set".
UNSET_SERVERS = {"KAFKA_HOST": "", "REDIS_HOST": "", "MONGO_HOST": ""}


def wait_for_api(script: Script, port: int) -> httpx.Client:
    """A client of the script's API, once ``/api/system/health`` answers."""
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def up() -> bool:
        script.text()  # fails at once if the script exited
        try:
            return http.get("/api/system/health").status_code == 200
        except httpx.TransportError:
            return False

    wait_until(up, timeout_s=60, interval_s=0.1, message=f"{script.log.name}: API up")
    return http


def test_the_seed_workers_run_alone(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / "complex_worker.py")], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert "released after" in r.stderr
    assert r.returncode == 0, r.stderr


def complex_tasks(path: Path, fail_chance: float) -> Path:
    """A seed tasks file whose first task is the complex worker, quick, always failing or never."""
    seed = yaml.safe_load((EXAMPLES / "all_workers.yml").read_text())
    first = seed["TaskWorkers"].pop("TaskWorker2")
    first["attachments"].update(retries=0)
    for sub in first["attachments"]["sub_tasks"]:
        sub.update(duration=0.1, fail_chance=fail_chance)
    path.write_text(yaml.safe_dump({"TaskWorkers": {"TaskWorker2": first, **seed["TaskWorkers"]}}, sort_keys=False))
    return path


@pytest.mark.parametrize(("fail_chance", "code"), [(0.0, 0), (1.0, 1)])
def test_seed_single_process_app_runs_the_first_task_and_exits_with_its_outcome(
    tmp_path: Path, fail_chance: float, code: int
) -> None:
    env = {**os.environ, **UNSET_SERVERS, "YAML_FILE": str(complex_tasks(tmp_path / "all_workers.yml", fail_chance))}
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / "single_process_app.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == code, r.stderr
    assert "[TaskWorker2]" in r.stderr and "released after" in r.stderr, "the worker ran here, its lines tagged"
    assert ("Download Data failed 1 times" in r.stderr) == bool(code)
    assert not (tmp_path / ".skalds").exists(), "no backend was opened"


def test_seed_single_process_app_stops_on_sigterm_with_128_plus_the_signal(tmp_path: Path) -> None:
    app = Script("single_process_app.py", tmp_path, {**UNSET_SERVERS, "YAML_FILE": str(EXAMPLES / "all_workers.yml")})
    wait_until(lambda: "Running main logic for MyWorker" in app.text(), timeout_s=30, message="TaskWorker1 runs")
    app.proc.send_signal(signal.SIGTERM)
    assert app.proc.wait(20) == 128 + signal.SIGTERM
    assert "[TaskWorker1]" in app.log.read_text()


def quick_seed_tasks(path: Path) -> Path:
    """examples/all_workers.yml with the complex worker's sub-tasks quick and never failing."""
    seed = yaml.safe_load((EXAMPLES / "all_workers.yml").read_text())
    for sub in seed["TaskWorkers"]["TaskWorker2"]["attachments"]["sub_tasks"]:
        sub.update(duration=0.1, fail_chance=0.0)
    path.write_text(yaml.safe_dump(seed))
    return path


def test_seed_edge_app_alone_on_embedded_backends_runs_its_tasks_with_no_api(tmp_path: Path) -> None:
    import psutil

    from skalds.backends.local import SqliteTaskStore

    env = {**UNSET_SERVERS, "NO_SERVERS": "1", "SKALD_ID": "lone-edge"}
    edge = Script("edge_app.py", tmp_path, {**env, "YAML_FILE": str(quick_seed_tasks(tmp_path / "all_workers.yml"))})
    try:
        wait_until(lambda: "Running main logic for MyWorker" in edge.text(), timeout_s=60, message="TaskWorker1 runs")
        store = SqliteTaskStore(tmp_path / ".skalds" / "tasks.db")
        try:
            first = store.get("TaskWorker1")
            assert (first.lifecycle_status.value, first.executor, first.mode.value) == (
                "Running",
                "lone-edge",
                "Active",
            )
            wait_until(
                lambda: store.get("TaskWorker2").lifecycle_status.value == "Finished",
                timeout_s=30,
                message="the complex worker finished",
            )
        finally:
            store.close()
        listening = [c for c in psutil.Process(edge.proc.pid).net_connections("inet") if c.status == "LISTEN"]
        assert listening == [], "no REST API: no port opened"
    finally:
        assert edge.stop() == 0


def test_seed_edge_app_alone_on_the_servers_runs_its_tasks_and_writes_the_originals_redis_keys(
    tmp_path: Path,
) -> None:
    import redis

    env = cluster_env()
    prefix, edge_id = env["REDIS_KEY_PREFIX"], "alone-edge"
    keys = redis.Redis(host=env["REDIS_HOST"], port=int(env["REDIS_PORT"]), decode_responses=True)
    keys.delete("task:TaskWorker1:heartbeat", "task:TaskWorker2:heartbeat")  # the original's fixed names
    edge = Script(
        "edge_app.py",
        tmp_path,
        {**env, "SKALD_ID": edge_id, "YAML_FILE": str(quick_seed_tasks(tmp_path / "all_workers.yml"))},
    )
    tasks = repository(env)
    try:
        wait_until(
            lambda: (
                (t := tasks.get_task_by_task_id("TaskWorker1")) is not None and t.lifecycle_status.value == "Running"
            ),
            timeout_s=60,
            message="the edge runs TaskWorker1 with no controller",
        )
        first = tasks.get_task_by_task_id("TaskWorker1")
        assert first is not None and (first.executor, first.pinned_node, first.mode.value) == (
            edge_id,
            edge_id,
            "Active",
        )
        wait_until(
            lambda: (
                (t := tasks.get_task_by_task_id("TaskWorker2")) is not None and t.lifecycle_status.value == "Finished"
            ),
            timeout_s=30,
            message="the complex worker finished on the edge",
        )

        # The original's keys, for monitors written for it.
        assert int(time.time() * 1000) - int(keys.hget(f"{prefix}:hash", edge_id) or 0) < 5000
        assert keys.hget(f"{prefix}:mode:hash", edge_id) == "edge"
        assert keys.lrange(f"{prefix}:{edge_id}:allow-task-class-name", 0, -1) == ["ComplexWorker", "MyWorker"]
        assert keys.exists(f"{prefix}:{edge_id}:heartbeat")
        beat = wait_until(lambda: keys.get("task:TaskWorker1:heartbeat"), timeout_s=10, message="a task heartbeat")
        assert 0 <= int(beat) < 200 and 0 < keys.ttl("task:TaskWorker1:heartbeat") <= 8
        wait_until(lambda: keys.get("task:TaskWorker1:heartbeat") != beat, timeout_s=10, message="it changes")
        wait_until(lambda: keys.get("task:TaskWorker2:heartbeat") == "200", timeout_s=10, message="finished: 200")
    finally:
        tasks.mongo_proxy.close()
        assert edge.stop() == 0
    assert keys.hget(f"{prefix}:hash", edge_id) is None, "a clean stop removes the node's entry"
    keys.close()


def test_seed_node_app_on_embedded_backends_runs_a_worker_registered_from_its_script(tmp_path: Path) -> None:
    port = free_port()
    app = Script("node_app.py", tmp_path, {**UNSET_SERVERS, "NO_SERVERS": "1", "PORT": str(port)})
    try:
        http = wait_for_api(app, port)
        assert [w["className"] for w in http.get("/api/workers").json()] == ["MyWorker"]
        body = {"id": "seed-1", "className": "MyWorker", "attachments": {"rtspUrl": "rtsp://cam/1", "fixFrame": 30}}
        assert http.post("/api/tasks", json=body).status_code == 201
        wait_until(
            lambda: http.get("/api/tasks/seed-1").json()["lifecycleStatus"] == "Running",
            timeout_s=20,
            message="running",
        )
        http.patch("/api/tasks/seed-1/attachments", json={"attachments": {"fixFrame": 31}})
        wait_until(lambda: "Updating event for MyWorker" in app.text(), timeout_s=10, message="update handled")
        assert "[seed-1]" in app.text(), "worker log lines carry the task id"
    finally:
        assert app.stop() == 0


def test_seed_node_and_edge_apps_join_a_distributed_cluster(tmp_path: Path) -> None:
    from tests.procs import KAFKA_FAST, SkaldsProcess, online

    env = cluster_env()
    tasks = quick_seed_tasks(tmp_path / "all_workers.yml")

    controller = SkaldsProcess(tmp_path, "+mode=controller", *KAFKA_FAST, env=env, name="controller")
    node = Script("node_app.py", tmp_path, {**env, "SKALD_ID": "seed-node"})
    edge = Script("edge_app.py", tmp_path, {**env, "SKALD_ID": "seed-edge", "YAML_FILE": str(tasks)})
    api = controller.http
    try:
        wait_until(
            lambda: online(api) >= {"seed-node", "seed-edge"},
            timeout_s=60,
            message="both seed apps hold leases",
        )
        wait_until(
            lambda: api.get("/api/tasks/TaskWorker1").json().get("lifecycleStatus") == "Running",
            timeout_s=30,
            message="the edge runs TaskWorker1",
        )
        assert api.get("/api/tasks/TaskWorker1").json()["executor"] == "seed-edge"
        wait_until(
            lambda: api.get("/api/tasks/TaskWorker2").json().get("lifecycleStatus") == "Finished",
            timeout_s=30,
            message="the complex worker finished on the edge",
        )

        body = {"id": "to-node", "className": "MyWorker", "attachments": {"rtspUrl": "rtsp://cam/2", "fixFrame": 5}}
        assert api.post("/api/tasks", json=body).status_code == 201
        wait_until(
            lambda: (
                api.get("/api/tasks/to-node").json()["executor"] == "seed-node"
                and api.get("/api/tasks/to-node").json()["lifecycleStatus"] == "Running"
            ),
            timeout_s=30,
            message="the node app runs a dispatched task",
        )
        api.post("/api/tasks/to-node/cancel")
        wait_until(lambda: "Fix Frame: 5" in node.text(), timeout_s=10, message="node app worker logged")

        # the seed's script way: TaskRepository.create_task + a TaskEvent through KafkaProxy
        assert "created from-script" in run_example("create_task.py", env, "from-script")
        wait_until(
            lambda: api.get("/api/tasks/from-script").json().get("lifecycleStatus") == "Running",
            timeout_s=30,
            message="the script's task runs",
        )
        assert api.get("/api/tasks/from-script").json()["source"] == "TestingScript"

        # A script that names the executor (SKALD_ID): placed there only, never by the policy.
        run_example("create_task.py", {**env, "SKALD_ID": "ghost-node"}, "to-a-ghost")
        wait_until(
            lambda: (
                api.get("/api/tasks/to-a-ghost").json().get("pendingReason")
                == "pinned to node ghost-node, which is offline"
            ),
            timeout_s=30,
            message="the dispatcher saw it and left it waiting, saying why",
        )
        assert "task to-a-ghost waits: pinned to node ghost-node, which is offline" in controller.log.read_text()
        run_example("create_task.py", {**env, "SKALD_ID": "seed-edge"}, "to-the-edge")
        wait_until(
            lambda: api.get("/api/tasks/to-the-edge").json().get("lifecycleStatus") == "Running",
            timeout_s=30,
            message="the task named for the edge runs there",
        )
        assert api.get("/api/tasks/to-the-edge").json()["executor"] == "seed-edge", "not the free node"
        ghost = api.get("/api/tasks/to-a-ghost").json()
        assert (ghost["lifecycleStatus"], ghost["executor"]) == ("Created", "ghost-node"), "waits for its node"
        api.post("/api/tasks/to-a-ghost/cancel")
    finally:
        for script in (node, edge):
            script.stop()
        controller.kill()


def run_example(name: str, env: dict[str, str], *args: str) -> str:
    """Run a script of examples/ to its end; its stdout."""
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=EXAMPLES,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def repository(env: dict[str, str]) -> TaskRepository:
    """The seed's task repository on the test's database."""
    return TaskRepository(MongoProxy(MongoConfig(host=env["MONGO_HOST"], db_name=env["DB_NAME"])))


def test_seed_node_app_runs_updates_and_cancels_a_scripted_task_with_no_controller(tmp_path: Path) -> None:
    env = cluster_env()
    node = Script("node_app.py", tmp_path, {**env, "SKALD_ID": "lone-node"})
    tasks = repository(env)
    try:
        wait_until(lambda: " up on " in node.text(), timeout_s=60, message="the node app is up")
        out = run_example("create_task.py", {**env, "SKALD_ID": "lone-node"}, "scripted")
        assert "created scripted on lone-node" in out

        def status(task_id: str = "scripted") -> str | None:
            task = tasks.get_task_by_task_id(task_id)
            return task.lifecycle_status.value if task else None

        wait_until(lambda: status() == "Running", timeout_s=30, message="the node placed and runs it")
        task = tasks.get_task_by_task_id("scripted")
        assert task is not None and (task.executor, task.pinned_node, task.source) == (
            "lone-node",
            "lone-node",
            "TestingScript",
        )
        wait_until(lambda: "Fix Frame: 30" in node.text(), timeout_s=10, message="the worker runs")

        assert "desired version 1" in run_example("update_task.py", env, "scripted", "77")
        wait_until(lambda: "Updating event for MyWorker" in node.text(), timeout_s=20, message="update handled")
        assert "fix_frame=77" in node.text()
        wait_until(
            lambda: (t := tasks.get_task_by_task_id("scripted")) is not None and t.applied_version == 1,
            timeout_s=10,
            message="the update is recorded as applied",
        )

        run_example("cancel_task.py", env, "scripted")
        wait_until(lambda: status() == "Cancelled", timeout_s=20, message="cancelled")
        wait_until(
            lambda: "task scripted stopped on node lone-node (cancelled)" in node.text(),
            timeout_s=20,
            message="its worker stopped",
        )
        with pytest.raises(InvalidTransition):
            tasks.update_attachments("scripted", {"rtspUrl": "rtsp://x", "fixFrame": 1})
        assert tasks.update_attachments("no-such-task", {}) is None
    finally:
        tasks.mongo_proxy.close()
        assert node.stop() == 0


def test_the_seed_tasks_file_runs_with_the_demo_pool_as_shipped(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skalds",
            f"controller.port={port}",
            f"workers.tasks_file={EXAMPLES / 'all_workers.yml'}",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

        def status(task_id: str) -> str | None:
            try:
                return http.get(f"/api/tasks/{task_id}").json().get("lifecycleStatus")
            except httpx.TransportError:
                return None

        wait_until(lambda: status("TaskWorker1") == "Running", timeout_s=60, message="TaskWorker1 runs")
        wait_until(lambda: status("TaskWorker2") in ("Running", "Finished"), timeout_s=30, message="ComplexWorker runs")
        assert status("demo-camera") == "Running", "the pool's own declared task too"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0


def test_seed_system_controller_script_serves_the_api_on_embedded_backends(tmp_path: Path) -> None:
    port = free_port()
    controller = Script("controller_app.py", tmp_path, {**UNSET_SERVERS, "PORT": str(port)})
    try:
        health = wait_for_api(controller, port).get("/api/system/health").json()
        assert (health["status"], health["backend"], health["nodes"]) == ("healthy", "local", 0)
    finally:
        assert controller.stop() == 0


def test_python_m_system_controller_main_takes_its_settings_from_the_environment(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **UNSET_SERVERS,
        "SYSTEM_CONTROLLER_MODE": "monitor",  # the lowercase spelling of the seed's DEPLOYMENT.md
        "SYSTEM_CONTROLLER_HOST": "127.0.0.1",
        "SYSTEM_CONTROLLER_PORT": str(port),
        "DISPATCHER_STRATEGY": "round_robin",
    }
    argv = [sys.executable, "-m", "skalds.system_controller.main"]
    controller = Script("system_controller_main", tmp_path, env, argv=argv)
    try:
        assert wait_for_api(controller, port).get("/api/system/health").json()["status"] == "healthy"
        assert "system_controller_mode=MONITOR: API, dispatcher (round_robin) and monitor" in controller.text()
    finally:
        assert controller.stop() == 0


def test_seed_system_controller_dispatches_to_a_seed_node_app_on_the_servers(tmp_path: Path) -> None:
    env = cluster_env()
    port = free_port()
    argv = [sys.executable, "-m", "skalds.system_controller.main"]
    controller_env = {**env, "SYSTEM_CONTROLLER_HOST": "127.0.0.1", "SYSTEM_CONTROLLER_PORT": str(port)}
    controller = Script("system_controller_main", tmp_path, controller_env, argv=argv)
    node = Script("node_app.py", tmp_path, {**env, "SKALD_ID": "seed-node"})
    try:
        api = wait_for_api(controller, port)
        wait_until(
            lambda: online(api) == {"seed-node"},
            timeout_s=60,
            message="the node app holds a lease",
        )
        body = {
            "id": "by-seed-controller",
            "className": "MyWorker",
            "attachments": {"rtspUrl": "rtsp://c", "fixFrame": 7},
        }
        assert api.post("/api/tasks", json=body).status_code == 201
        wait_until(
            lambda: api.get("/api/tasks/by-seed-controller").json()["lifecycleStatus"] == "Running",
            timeout_s=30,
            message="the seed controller placed the task on the node app",
        )
        assert api.get("/api/tasks/by-seed-controller").json()["executor"] == "seed-node"
        api.post("/api/tasks/by-seed-controller/cancel")
    finally:
        node.stop()
        assert controller.stop() == 0
