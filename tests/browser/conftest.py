"""The dashboard in headless Chromium: Debian's browser driven by Playwright (sync API), against
a real ``python -m skalds`` process. Without Chromium or Playwright these tests skip; with
CI=true they fail. Every test leaves screenshots in ``build/screenshots/``."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.procs import SkaldsProcess
from tests.servers import in_ci

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
#: Flags for a browser that stays on this machine: no GPU, no QUIC, no phoning home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 900}  # a laptop screen
TIMEOUT_MS = 20_000


def missing(reason: str) -> None:
    """Skip the test, or fail it under CI, where the browser must be there."""
    if in_ci():
        pytest.fail(f"browser test under CI=true: {reason}")
    pytest.skip(reason)


def chromium_executable() -> str | None:
    """Debian's Chromium (``apt-get install chromium``), never a browser Playwright downloads;
    ``SKALDS_CHROMIUM`` names another Chromium build."""
    chosen = os.environ.get("SKALDS_CHROMIUM")
    if chosen is not None:
        return chosen if os.access(chosen, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def driver() -> Iterator[tuple[Any, str]]:
    """Playwright and the Chromium it drives."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (pip install -e '.[test]')")
    executable = chromium_executable()
    if executable is None:
        missing("Chromium is not installed (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        yield playwright, executable


@pytest.fixture
def page(driver: tuple[Any, str], tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page of a fresh browser profile; fails the test on any uncaught JavaScript error."""
    playwright, executable = driver
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"),
        executable_path=executable,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport=VIEWPORT,
    )
    context.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    p = context.pages[0] if context.pages else context.new_page()
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield p
        assert not errors, f"JavaScript errors on the page: {errors}"
    finally:
        try:
            screenshot(p, f"{request.node.name}-last")
        finally:
            context.close()


@pytest.fixture(scope="module")
def skalds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SkaldsProcess]:
    """One standalone Skalds (controller + node ``proc-node``) for the module's tests; each test
    uses task ids of its own."""
    proc = SkaldsProcess(tmp_path_factory.mktemp("skalds"))
    try:
        yield proc
    finally:
        proc.stop()


def screenshot(page: Any, name: str) -> Path:
    """Save the whole page as ``build/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path
