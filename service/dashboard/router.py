"""`/` (the dashboard's one page), `/docs` and `/redoc`, and `/static` for their assets.

Every asset ships in the package (no CDN, no build step): the dashboard is plain ES
modules, the chart library and the docs UIs are vendored (see static/vendor/README.md).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    # The pages are static shells: every value is fetched and rendered by the scripts.
    return FileResponse(
        STATIC / name, media_type="text/html", headers={"Cache-Control": "no-cache"}
    )


@router.get("/")
def dashboard() -> FileResponse:
    """The dashboard: experiments, one experiment, a sweep, a comparison."""
    return _page("index.html")


@router.get("/docs")
def swagger_ui() -> FileResponse:
    """Swagger UI over /openapi.json, from the vendored bundle."""
    return _page("docs.html")


@router.get("/redoc")
def redoc() -> FileResponse:
    """ReDoc over /openapi.json, from the vendored bundle."""
    return _page("redoc.html")


def install(app: FastAPI) -> None:
    """Serve the pages and their static assets on `app` (created with docs_url=None)."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
