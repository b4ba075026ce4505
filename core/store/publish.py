"""Live fan-out: what a transaction wrote (events, metric points, progress) goes to Redis
pub/sub right after it commits, for the API's Server-Sent Events streams.

The repositories note what they write in `session.info`; a listener publishes it after
the commit and drops it on a rollback, so nothing that was not committed is ever sent.
Every process that writes (API, worker, reaper) registers its settings once with
`enable(settings)`; a process that did not is silent. One channel per deployment (named
by its queue) carries every experiment; each message is one JSON object:

    {"experiment_id", "events": [event rows], "metrics": [[id, name, step, epoch, value]],
     "progress": {status, epoch, step, total} | null, "resync": bool}

Pub/sub delivers at most once; streams replay from the database by id, so a lost message
costs latency, never a point (see service/experiments/events.py).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import redis
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from core.settings import Settings

log = logging.getLogger("actlab.live")

PENDING = "live_pending"


def channel(settings: Settings) -> str:
    """The pub/sub channel of a deployment (its queue name keeps test runs apart)."""
    return f"actlab:{settings.queue}:live"


def _message(experiment_id: str) -> dict[str, Any]:
    return {
        "experiment_id": experiment_id,
        "events": [],
        "metrics": [],
        "progress": None,
        "resync": False,
    }


def _pending(session: Session, experiment_id: str) -> dict[str, Any]:
    messages: dict[str, dict[str, Any]] = session.info.setdefault(PENDING, {})
    return messages.setdefault(experiment_id, _message(experiment_id))


def note_event(session: Session, row: dict[str, Any]) -> None:
    """Publish this event row (with its id) once the transaction commits."""
    _pending(session, row["experiment_id"])["events"].append(row)


def note_points(session: Session, experiment_id: str, rows: list[list[Any]]) -> None:
    """Publish these inserted metric rows `[id, name, step, epoch, value]` after commit."""
    _pending(session, experiment_id)["metrics"].extend(rows)


def note_progress(session: Session, experiment_id: str, progress: dict[str, Any]) -> None:
    """Publish the experiment's progress `{status, epoch, step, total}` after commit."""
    _pending(session, experiment_id)["progress"] = progress


class Publisher:
    """Publishes committed writes of one database to one deployment's channel."""

    def __init__(self, settings: Settings) -> None:
        from core.queue import broker_client

        self.channel = channel(settings)
        self.client = broker_client(settings, timeout=2.0)
        self._failed = False  # a lost message: the next one asks streams to re-read the db
        self._lock = threading.Lock()

    def publish(self, messages: list[dict[str, Any]]) -> None:
        with self._lock:
            try:
                for message in messages:
                    message["resync"] = message["resync"] or self._failed
                    self.client.publish(self.channel, json.dumps(message, default=str))
                self._failed = False
            except (redis.RedisError, OSError):
                # The rows are committed; streams catch up from the database by id.
                self._failed = True
                log.warning("live publish failed; streams will re-read the database")


_publishers: dict[str, Publisher] = {}


def enable(settings: Settings) -> None:
    """Publish what this process commits to `settings`' database (idempotent)."""
    key = _key(make_url(settings.resolved_database_url))
    if key not in _publishers:
        _publishers[key] = Publisher(settings)


def _key(url: URL) -> str:
    return url.render_as_string(hide_password=False)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    messages = session.info.pop(PENDING, None)
    if not messages:
        return
    bind = session.get_bind()
    publisher = _publishers.get(_key(bind.engine.url))
    if publisher is not None:
        publisher.publish(list(messages.values()))


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(PENDING, None)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: Any) -> None:
    from core.store.models import Event

    for obj in session.new:
        if isinstance(obj, Event):
            note_event(session, event_row(obj))


def event_row(row: Any) -> dict[str, Any]:
    """An events-table row as the JSON the streams send (`id` orders it)."""
    return {
        "id": row.id,
        "experiment_id": row.experiment_id,
        "at": row.created_at.isoformat() if row.created_at else None,
        "kind": row.kind,
        "status": row.status,
        "message": row.message,
        "data": row.data,
    }
