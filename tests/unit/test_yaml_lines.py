"""A YAML syntax error is reported at the line the mistake is on."""

from __future__ import annotations

from pathlib import Path

import pytest

from skalds.errors import ValidationFailed
from skalds.reload.pool import WorkerPoolFile, load_file
from skalds.worker.registry import WorkerCatalog

HEAD = "name: demo\nclasses:\n  MyWorker: skalds.workers.demo:MyWorker\ntasks:\n  a:\n    className: MyWorker\n"


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ('    attachments:\n      rtspUrl: "rtsp://x\n      fixFrame: 3\n\n  b:\n    className: MyWorker\n', 8),
        ("    attachments: {rtspUrl: x, fixFrame: 3\n\n  b:\n    className: MyWorker\n", 7),
        ("    attachments:\n      rtspUrl: x\n     fixFrame: 3\n", 9),
        ("    attachments:\n      rtspUrl: x\n      fixFrame: 3: 4\n", 9),
        ("\tpriority: 1\n", 7),
        ("    attachments: [1, 2\n    priority: 1\n", 7),
    ],
    ids=["open quote", "open brace", "bad indent", "two colons", "tab", "open bracket"],
)
def test_the_reported_line_is_the_line_of_the_mistake(tmp_path: Path, body: str, line: int) -> None:
    path = tmp_path / "pool.yaml"
    path.write_text(HEAD + body)
    with pytest.raises(ValidationFailed) as caught:
        load_file(path, WorkerPoolFile, WorkerCatalog({"MyWorker": "skalds.workers.demo:MyWorker"}), "tasks")
    problem = caught.value.detail["problem"]
    assert problem.line == line, str(problem)
    assert str(problem).startswith(f"{path}:{line}: YAML syntax")
