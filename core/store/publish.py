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

import atexit
import json
import logging
import os
import queue
import threading
import time
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
    """Publishes committed writes of one database to one deployment's channel.

    `publish` never waits on Redis: it hands the messages to the process's one background
    thread (`_Outbox`, in order), so a worker whose broker is gone trains at full speed. While the
    broker is away messages are dropped and counted, never retried: after a failure the
    publisher skips every attempt for `pause_s` (a circuit breaker), each attempt fails
    within `timeout_s`, and the next message sent asks streams to re-read the database.
    """

    def __init__(self, settings: Settings, *, timeout_s: float = 0.5, pause_s: float = 2.0):
        from core.queue import broker_client

        self.channel = channel(settings)
        self.client = broker_client(settings, timeout=timeout_s, retry=False)
        self.pause_s = pause_s
        self.dropped = 0  # messages never sent (broker away, or the outbox full)
        self._covered = 0  # drops that a message sent with `resync` already told streams of
        self._closed_until = 0.0  # the breaker: no attempt before this (time.monotonic)
        self._lock = threading.Lock()

    def publish(self, messages: list[dict[str, Any]]) -> None:
        """Queue the messages for the background thread; returns at once."""
        for message in messages:
            if not _outbox().put(self, message):
                self.drop("the outbox is full")

    def drop(self, why: str) -> None:
        with self._lock:
            self.dropped += 1
        log.debug("live message dropped (%s); streams will re-read the database", why)

    def send(self, message: dict[str, Any]) -> None:
        """Publish one message now (on the outbox's thread), or drop it while the broker is
        away. The rows are committed either way; streams catch up from the database by id."""
        if time.monotonic() < self._closed_until:
            self.drop("the broker was unreachable moments ago")
            return
        dropped = self.dropped  # drops after this read are told by a later message
        message["resync"] = message["resync"] or dropped != self._covered
        try:
            self.client.publish(self.channel, json.dumps(message, default=str))
        except (redis.RedisError, OSError) as exc:
            self._closed_until = time.monotonic() + self.pause_s
            self.drop(type(exc).__name__)
            log.warning(
                "live publish failed (%s); none tried for %g s, streams will re-read the "
                "database (%d messages dropped so far)",
                exc,
                self.pause_s,
                self.dropped,
            )
            return
        self._covered = dropped


class _Outbox:
    """A bounded queue of (publisher, message) and the one thread that sends them in order."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.pid = os.getpid()
        self._queue: queue.Queue[tuple[Publisher, dict[str, Any]]] = queue.Queue(capacity)
        self._thread = threading.Thread(target=self._run, name="actlab-live-publish", daemon=True)
        self._thread.start()
        atexit.register(self.flush, 2.0)  # a process ending sends what it committed last

    def put(self, publisher: Publisher, message: dict[str, Any]) -> bool:
        try:
            self._queue.put_nowait((publisher, message))
        except queue.Full:
            return False
        return True

    def flush(self, timeout_s: float) -> bool:
        """Wait (at most `timeout_s`) until every queued message was sent or dropped."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _run(self) -> None:
        while True:
            publisher, message = self._queue.get()
            try:
                publisher.send(message)
            except Exception:  # e.g. a row that does not serialise: one message, not all
                log.exception("live publish failed")
            finally:
                self._queue.task_done()


_outbox_lock = threading.Lock()
_the_outbox: _Outbox | None = None


def _outbox() -> _Outbox:
    """The process's outbox, its thread started by the first message (after any fork)."""
    global _the_outbox
    with _outbox_lock:
        if _the_outbox is None or _the_outbox.pid != os.getpid():
            _the_outbox = _Outbox()
        return _the_outbox


def flush(timeout_s: float = 5.0) -> bool:
    """Wait until what this process committed so far was published (or dropped)."""
    return _the_outbox is None or _the_outbox.flush(timeout_s)


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
