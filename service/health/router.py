"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from core.queue import ping_broker
from core.spec import plugins
from core.store.db import get_engine
from service.deps import SettingsDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, Any]:
    """The process is up; `failed_plugins` counts plugins skipped at start-up, if any.

    Only a count: liveness needs no key, and a plugin's error text may name server paths or
    settings (`GET /v1/plugins` says which failed and, to an admin, why). On the event loop
    (no thread): a liveness probe must not queue behind the thread pool.
    """
    body: dict[str, Any] = {"status": "ok"}
    if skipped := plugins.problems():
        body["failed_plugins"] = len(skipped)
    return body


@router.get("/readyz")
def readyz(settings: SettingsDep) -> Any:
    """The database and the broker answer; 503 names the one that does not."""
    checks: dict[str, str] = {}
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
