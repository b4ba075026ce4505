"""The FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from core.settings import Settings, get_settings
from core.store import publish
from service import observability, openapi_names, problems
from service.body_limit import BodyLimit
from service.catalogue.router import router as catalogue_router
from service.dashboard import router as dashboard
from service.dashboard.csp import SecurityHeaders
from service.db_gate import DatabaseGate
from service.experiments import live as live_streams
from service.experiments.batch_router import router as batch_metrics_router
from service.experiments.router import router as experiments_router
from service.health.router import router as health_router
from service.queue.router import router as queue_router
from service.strict_json import StrictJson
from service.sweeps.events_router import router as sweep_events_router
from service.sweeps.router import router as sweeps_router

DESCRIPTION = """Training as a service for research on activation functions and activation
noise. POST an experiment spec, poll its status and metrics, compare sweeps with
confidence intervals. Errors are `application/problem+json` (RFC 9457)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """An app bound to `settings` (default: from the environment)."""
    settings = settings or get_settings()
    # /docs and /redoc come from the dashboard package, with vendored assets (no CDN).
    app = FastAPI(
        title="actlab",
        version="0.1.0",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=live_streams.lifespan,
    )
    app.state.settings = settings
    openapi_names.install(app)  # names and unit params from the registries, as validated
    publish.enable(settings)  # what this process commits reaches the live streams
    problems.install(app)
    observability.install(app, settings)
    app.include_router(health_router)
    routers = (
        catalogue_router,
        experiments_router,
        batch_metrics_router,
        sweeps_router,
        queue_router,
    )
    for router in (*routers, sweep_events_router):
        app.include_router(router, responses=problems.PROBLEM_RESPONSES)
    app.add_middleware(StrictJson)  # inside BodyLimit: only bodies under the cap are read
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(DatabaseGate)
    dashboard.install(app)
    app.add_middleware(SecurityHeaders)
    return app
