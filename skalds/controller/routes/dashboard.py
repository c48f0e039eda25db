"""``/`` and ``/dashboard``: the operator dashboard, plain HTML, CSS and JavaScript modules.

The files live in ``skalds/controller/static/dashboard/`` and are shipped in the wheel as they
are: there is no build step and nothing is fetched from elsewhere at run time. The page reads
the same REST API and event stream as any other client.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from skalds.errors import NotFound

router = APIRouter(include_in_schema=False)
ROOT = Path(__file__).resolve().parents[1] / "static" / "dashboard"
#: Set explicitly: ``mimetypes`` answers differ between Pythons and hosts, and a browser
#: refuses to run a module served under a type it does not take for JavaScript.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
#: Revalidate on every load (cheap: the answer carries an ETag), so an upgraded controller
#: never runs a page whose modules are half old and half new.
HEADERS = {"Cache-Control": "no-cache"}


def _file(relative: str) -> FileResponse:
    path = (ROOT / relative).resolve()
    if not path.is_relative_to(ROOT) or not path.is_file() or path.suffix not in MEDIA_TYPES:
        raise NotFound(f"no dashboard file {relative!r}", path=relative)
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=HEADERS)


@router.get("/")
@router.get("/dashboard")
@router.get("/dashboard/")
def index() -> FileResponse:
    """The dashboard's page (the original served it under ``/dashboard``)."""
    return _file("index.html")


@router.get("/dashboard/{relative:path}")
def asset(relative: str) -> FileResponse:
    """A file of the dashboard: a script module, the style sheet, the icon."""
    return _file(relative)
