"""The FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from service import problems
from service.experiments.router import router as experiments_router
from service.health.router import router as health_router
from service.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """An app bound to `settings` (default: from the environment)."""
    app = FastAPI(
        title="actlab",
        version="0.1.0",
        summary="Training as a service for activation-function and activation-noise research.",
    )
    app.state.settings = settings or get_settings()
    problems.install(app)
    app.include_router(health_router)
    app.include_router(experiments_router)
    return app
