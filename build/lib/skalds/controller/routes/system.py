"""``/api/workers``, ``/api/skalds``, ``/api/system/health``."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(prefix="/api", tags=["system"])


@router.get("/workers", summary="Worker classes and their attachment schemas")
def list_workers(request: Request) -> list[dict[str, Any]]:
    """Each known class with the JSON Schema of its attachments."""
    return request.app.state.skalds.tasks.catalog.schemas()


@router.get("/skalds", summary="Live nodes")
def list_nodes(request: Request) -> list[dict[str, Any]]:
    """Nodes with a live lease: id, mode, classes, capacity, running tasks, last heartbeat."""
    nodes = request.app.state.skalds.tasks.live.nodes()
    # The attachment schemas a node advertises are served by /api/workers, not repeated here.
    return [{k: v for k, v in n.to_dict().items() if k != "schemas"} for n in sorted(nodes, key=lambda n: n.id)]


@router.get("/system/health", summary="Health")
def health(request: Request) -> dict[str, Any]:
    """``ok`` when the store answers; also how many nodes hold a lease."""
    state = request.app.state.skalds
    state.tasks.store.count_active_by_executor()  # raises BackendUnavailable -> 503
    return {
        "status": "ok",
        "backend": state.backend,
        "nodes": len(state.tasks.live.nodes()),
        "uptimeS": round(time.monotonic() - state.started, 3),
    }


@router.get("/system/config", summary="Declared tasks: the last reload of the pool files")
def config_status(request: Request) -> dict[str, Any]:
    """Which files declare tasks here, and the result of their last reload: what was
    created/updated/replaced/cancelled, or why the edit was rejected (file, line, field)."""
    declared = request.app.state.skalds.declared
    if declared is None:
        return {"files": [], "lastReload": None}
    last = declared.last.to_dict() if declared.last else None
    error = last["error"] if last else None
    files = [
        {
            "path": str(p),
            "ok": not (error and error["file"] == str(p)),
            "error": error if error and error["file"] == str(p) else None,
        }
        for p in declared.files
    ]
    return {"source": declared.source, "files": files, "lastReload": last}
