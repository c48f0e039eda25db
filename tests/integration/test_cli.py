"""The command line as users meet it: help, version, one-line answers to common mistakes, and
processes that ``ps`` tells apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from skalds import __version__
from skalds.testing import wait_until
from tests.procs import SkaldsProcess

pytestmark = pytest.mark.integration


def skalds(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "skalds", *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_version_and_help_speak_for_skalds() -> None:
    version = skalds("--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"skalds {__version__}")
    help_text = skalds("--help").stdout
    for expected in (
        "Common commands:",
        "+mode=controller",
        "dispatch: binpack, least_loaded, random, round_robin",
        "node.lease_ttl_s",
        "a node silent this long is lost",
        "--cfg job",
    ):
        assert expected in help_text
    assert "Hydra's version" not in help_text


@pytest.mark.parametrize(
    ("args", "answer"),
    [
        (["mode=controller"], "write +mode=controller"),
        (["dispatch=fastest"], "dispatch has no option 'fastest'; choose one of: binpack, least_loaded"),
        (["+mode=nodes"], "mode has no option 'nodes'"),
        (["workers=nope"], "workers has no option 'nope'; choose one of: camera_pool, demo"),
    ],
)
def test_common_mistakes_get_one_line_saying_what_to_write(args: list[str], answer: str) -> None:
    r = skalds(*args)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and answer in r.stderr, r.stderr


def test_an_out_of_range_value_stops_the_start_before_anything_runs(tmp_path: Path) -> None:
    r = skalds("controller.port=99999", cwd=tmp_path)
    assert r.returncode == 2 and "controller.port: must be <= 65535 (got 99999)" in r.stderr
    assert not (tmp_path / ".skalds").exists(), "nothing was started or written"


def test_every_process_has_a_title_of_its_own(tmp_path: Path) -> None:
    p = SkaldsProcess(tmp_path, node_id="titled")
    try:
        r = p.http.post(
            "/api/tasks", json={"id": "cam-t", "className": "MyWorker", "attachments": {"rtspUrl": "r", "fixFrame": 1}}
        )
        assert r.status_code == 201

        def titles() -> set[str]:
            procs = [psutil.Process(p.proc.pid), *p.descendants()]
            return {" ".join(q.cmdline()).strip() for q in procs}

        expected = {"skalds standalone titled", "skalds launcher node titled", "skalds worker cam-t MyWorker"}
        wait_until(lambda: expected <= titles(), message=f"process titles (have {titles()})")
    finally:
        assert p.stop() == 0
