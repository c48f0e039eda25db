"""The dashboard's files as the controller serves them: the page at ``/`` and ``/dashboard``,
every module the page imports (followed from index.html, so a file left out of the package
fails here), the right media types, and nothing outside the dashboard's folder."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from skalds.controller import errors
from skalds.controller.routes import dashboard

IMPORT = re.compile(r"""^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]""", re.M)


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    errors.install(app)
    app.include_router(dashboard.router)
    return TestClient(app)


@pytest.mark.parametrize("path", ["/", "/dashboard", "/dashboard/"])
def test_the_page_opens_at_the_root_and_at_the_original_dashboard_path(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/dashboard/js/main.js">' in r.text
    assert r.headers["cache-control"] == "no-cache"


def test_every_module_the_page_imports_is_served_as_javascript(client: TestClient) -> None:
    pending, seen = ["/dashboard/js/main.js"], set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/javascript"), path
        for match in IMPORT.finditer(r.text):
            target = match.group(1) or match.group(2)
            assert target.startswith("."), f"{path} imports {target}: only the dashboard's own modules"
            base = path.rsplit("/", 1)[0]
            parts = f"{base}/{target}".split("/")
            resolved: list[str] = []
            for part in parts:
                if part == "..":
                    resolved.pop()
                elif part not in (".", ""):
                    resolved.append(part)
            pending.append("/" + "/".join(resolved))
    assert len(seen) > 5
    for asset in ("/dashboard/style.css", "/dashboard/favicon.svg"):
        assert client.get(asset).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/../routes/dashboard.py",
        "/dashboard/%2e%2e/routes/dashboard.py",
        "/dashboard/..%2f..%2fapp.py",
        "/dashboard/missing.js",
        "/dashboard/js",
    ],
)
def test_nothing_else_is_served(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.json()["error"] == "NotFound"
