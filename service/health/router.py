"""Liveness and readiness."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from core.queue import ping_broker
from core.spec import plugins
from core.store.db import get_engine
from service.deps import SettingsDep
from service.problems import DISK_FULL_READY_S, disk_full_since

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=dict[str, Any],
    responses={503: {"description": "A child of `actlab up` (broker, worker) is down"}},
)
async def healthz(request: Request) -> Any:
    """The process is up; `failed_plugins` counts plugins skipped at start-up, if any.

    Only a count: liveness needs no key, and a plugin's error text may name server paths or
    settings (`GET /v1/plugins` says which failed and, to an admin, why). On the event loop
    (no thread): a liveness probe must not queue behind the thread pool.

    Under `actlab up`, `children` reports the broker and worker it supervises (status, pid,
    restarts); while one of them is down and being restarted the answer is a 503, so a
    probe sees a deployment that cannot queue or train (service/supervise.py).
    """
    body: dict[str, Any] = {"status": "ok"}
    if skipped := plugins.problems():
        body["failed_plugins"] = len(skipped)
    children = getattr(request.app.state, "children", None)
    if children is None:
        return body
    body["children"] = children.snapshot()
    if all(child["status"] == "running" for child in body["children"].values()):
        return body
    body["status"] = "unavailable"
    return JSONResponse(body, status_code=503)


@router.get("/readyz")
def readyz(request: Request, settings: SettingsDep) -> Any:
    """The database and the broker answer, and no write was refused for lack of space in
    the last few minutes; 503 names what is wrong."""
    checks: dict[str, str] = {}
    if (storage := storage_check(request)) is not None:
        checks["storage"] = storage  # listed only while it reports a problem
    try:
        with get_engine(settings.resolved_database_url).connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}: {exc}"[:300]
    try:
        ping_broker(settings)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {type(exc).__name__}: {exc}"[:300]
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


def storage_check(request: Request) -> str | None:
    """A full database still answers SELECT 1: only a refused write tells, so remember it."""
    at = disk_full_since(request.app)
    if at is None:
        return None
    when = datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds")
    return (
        f"error: the database refused a write for lack of space at {when} "
        f"(reported for {DISK_FULL_READY_S:g} s after the last one)"
    )
