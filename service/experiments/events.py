"""An experiment's events as JSON pages and as a Server-Sent Events stream."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from service.settings import Settings
from service.store import experiments as repo
from service.store import metrics as metrics_repo
from service.store.db import session_scope
from service.store.models import TERMINAL, Event, Experiment, Status

KEEPALIVE_SECONDS = 15.0


def event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.created_at.isoformat(),
        "kind": event.kind,
        "status": event.status,
        "message": event.message,
        "data": event.data,
    }


def _sse(kind: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _progress(row: Experiment) -> dict[str, Any]:
    return {
        "status": row.status,
        "epoch": row.progress_epoch,
        "step": row.progress_step,
        "total": row.progress_total,
    }


def stream(
    settings: Settings, experiment_id: str, *, after: int, poll_seconds: float = 0.5
) -> Iterator[str]:
    """Status transitions, progress and new metric points until the experiment ends.

    Runs in a worker thread (Starlette iterates sync generators off the event loop) and
    opens a short session per poll, so a long stream holds no connection or lock.
    """
    url = settings.resolved_database_url
    with session_scope(url) as session:
        metric_cursor = metrics_repo.last_id(session, experiment_id)
    last_progress: dict[str, Any] | None = None
    quiet_since = time.monotonic()
    while True:
        chunks: list[str] = []
        with session_scope(url) as session:
            for event in repo.events_after(session, experiment_id, after, limit=500):
                after = event.id
                chunks.append(_sse(event.kind, event_json(event), event.id))
            points = metrics_repo.points_after_id(session, experiment_id, metric_cursor)
            if points:
                metric_cursor = points[-1][0]
                chunks.append(
                    _sse(
                        "metrics",
                        [
                            {"name": n, "step": s, "epoch": e, "value": v}
                            for _, n, s, e, v in points
                        ],
                    )
                )
            row = repo.get(session, experiment_id)
            progress = _progress(row) if row else None
        if progress and progress != last_progress:
            last_progress = progress
            chunks.append(_sse("progress", progress))
        if chunks:
            quiet_since = time.monotonic()
            yield "".join(chunks)
        elif time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        if row is None or (Status(row.status) in TERMINAL and not chunks):
            yield _sse("end", {"status": row.status if row else None})
            return
        time.sleep(poll_seconds)
