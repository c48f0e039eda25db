"""``/api/workers``, ``/api/skalds``, ``/api/system/health``."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from skalds.errors import BackendUnavailable

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


@router.get("/system/config", summary="Watched pool files of every process, with their last reload")
def config_status(request: Request) -> dict[str, Any]:
    """Every worker pool file a process of the cluster watches (this one's and each live
    node's and edge's), with the result of its last reload: what was applied, or why the
    edit was rejected (file, line, field)."""
    state = request.app.state.skalds
    reloader = state.reloader
    files = [{"node": state.here, **f} for f in (reloader.status() if reloader else [])]
    try:
        nodes = state.tasks.live.nodes()
    except BackendUnavailable:
        nodes = []
    for node in sorted(nodes, key=lambda n: n.id):
        if node.id != state.here:
            files += [{"node": node.id, **f} for f in node.files]
    last = reloader.last.to_dict() if reloader and reloader.last else None
    return {"source": reloader.source if reloader else None, "files": files, "lastReload": last}
