"""Prometheus metrics: experiments by status, queue depth, run durations, HTTP latency."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import func, select

from core.queue import broker_client
from core.settings import Settings
from core.store.db import session_scope
from core.store.models import TERMINAL, Experiment, Status
from service.auth import PrincipalDep
from service.errors import Forbidden
from service.problems import PROBLEM_JSON, PROBLEM_RESPONSES, PROBLEM_SCHEMA

log = logging.getLogger("actlab.metrics")
DURATION_BUCKETS = (10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


# With auth on: 401 without a valid key, 403 for a key that is not an admin's.
_METRICS_ERRORS: dict[int | str, dict[str, Any]] = {
    401: PROBLEM_RESPONSES[401],
    403: {"description": "Not an admin key", "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}},
}


def queue_depth(settings: Settings) -> int:
    """Messages waiting in the Celery queue (a Redis list named after the queue)."""
    client = broker_client(settings)
    try:
        return int(client.llen(settings.queue))  # type: ignore[arg-type]
    finally:
        client.close()


class StoreCollector:
    """Reads the database (and broker) at scrape time: the store is the source of truth."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Any]:
        by_status = GaugeMetricFamily(
            "actlab_experiments", "Experiments by status", labels=["status"]
        )
        durations: list[float] = []
        with session_scope(self.settings.resolved_database_url) as session:
            counts = dict(
                session.execute(
                    select(Experiment.status, func.count()).group_by(Experiment.status)
                ).all()
            )
            finished = session.execute(
                select(Experiment.started_at, Experiment.finished_at).where(
                    Experiment.status.in_([s.value for s in TERMINAL]),
                    Experiment.started_at.is_not(None),
                    Experiment.finished_at.is_not(None),
                )
            ).all()
        for status in Status:
            by_status.add_metric([status.value], counts.get(status.value, 0))
        yield by_status
        durations = [(end - start).total_seconds() for start, end in finished if start and end]
        yield _histogram("actlab_run_duration_seconds", "Wall time of finished runs", durations)
        depth = GaugeMetricFamily("actlab_queue_depth", "Messages waiting in the broker queue")
        try:
            depth.add_metric([], queue_depth(self.settings))
        except Exception as exc:  # report what we can; the broker may be away
            log.warning("queue depth unavailable: %s", exc)
            depth.add_metric([], float("nan"))
        yield depth


def _histogram(name: str, doc: str, values: list[float]) -> HistogramMetricFamily:
    buckets = [(str(b), float(sum(v <= b for v in values))) for b in DURATION_BUCKETS]
    buckets.append(("+Inf", float(len(values))))
    family = HistogramMetricFamily(name, doc)
    family.add_metric([], buckets, sum_value=sum(values))
    return family


class Latency:
    """Time to the response's start, by route (pure ASGI: a stream's body chunks pass
    straight through, where `@app.middleware("http")` would relay each through a task)."""

    def __init__(self, app: Any, histogram: Histogram) -> None:
        self.app, self.histogram = app, histogram

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                path = getattr(scope.get("route"), "path", "unmatched")
                elapsed = time.perf_counter() - started
                self.histogram.labels(scope["method"], path, str(message["status"])).observe(
                    elapsed
                )
            await send(message)

        await self.app(scope, receive, timed_send)


def install(app: FastAPI, settings: Settings) -> None:
    """GET /metrics and the HTTP latency middleware, on a registry of this app's own."""
    registry = CollectorRegistry()
    registry.register(StoreCollector(settings))  # type: ignore[arg-type]
    latency = Histogram(
        "actlab_http_request_duration_seconds",
        "HTTP request latency",
        ["method", "route", "status"],
        registry=registry,
    )

    app.add_middleware(Latency, histogram=latency)

    router = APIRouter(tags=["health"])

    @router.get("/metrics", response_class=Response, responses=_METRICS_ERRORS)
    def metrics(principal: PrincipalDep) -> Response:
        """Prometheus exposition; with auth on, for admin keys only (it counts every owner's
        experiments)."""
        if not principal.admin:
            raise Forbidden("/metrics needs an admin key (`actlab keys create NAME --admin`)")

        def exposition() -> Iterator[bytes]:
            yield generate_latest(registry)

        # Rendered as the response is sent, once the request's session has ended: on SQLite
        # the key lookup's transaction holds the write lock the collector's session needs.
        return StreamingResponse(exposition(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(router)
