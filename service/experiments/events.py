"""Experiments' events as JSON pages, and live streams as Server-Sent Events.

A stream subscribes to the live channel first, then replays from the database everything
after the client's id, then sends what the channel brings. Every message carries an id
`E-M`: the largest event id and the largest metric-point id it has sent. A reconnect with
`Last-Event-ID: E-M` replays events with a larger id than E and points with a larger id
than M, so nothing is lost or sent twice, whatever happened meanwhile (a worker died, an
attempt resumed). A message from the channel is used as it is, except when the database
may hold rows that were never published: a message flagged `resync` (a publish failed), or
a status event that sends the experiment back to the queue or starts a later attempt (the
previous worker may have died between a commit and its publish); then the stream re-reads
that experiment from the database.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from service.auth import Principal
from service.errors import InvalidSpec
from service.experiments.live import LOST, Hub, Subscription, hub_of
from service.settings import Settings
from service.store import experiments as repo
from service.store import live
from service.store import metrics as metrics_repo
from service.store.db import session_scope
from service.store.models import TERMINAL, Event

KEEPALIVE_SECONDS = 15.0
BATCH = 1000  # rows per table per database read; a longer backlog takes several reads


def event_json(event: Event) -> dict[str, Any]:
    row = live.event_row(event)
    del row["experiment_id"]
    return row


# A stream id as sent (`E-M`, or a bare event id; empty: none), ASCII digits that fit a
# bigint column. The header's schema carries the same pattern.
STREAM_ID_PATTERN = r"^([0-9]{1,18}(-[0-9]{0,18})?)?$"
STREAM_ID = re.compile(STREAM_ID_PATTERN)


@dataclass
class Cursor:
    """What a client has: events up to `event`, metric points up to `metric` (by id)."""

    event: int = 0
    metric: int = 0

    @classmethod
    def parse(cls, last_event_id: str | None, after: int) -> Cursor:
        """`E-M` from a Last-Event-ID header (a bare number is an event id, like `after`)."""
        if not last_event_id:
            return cls(after, 0)
        if STREAM_ID.fullmatch(last_event_id.strip()) is None:
            raise InvalidSpec(
                "Last-Event-ID: expected '<event id>-<metric id>' as sent in a stream's id",
                errors=[{"path": "header.last-event-id", "message": "malformed stream id"}],
            )
        head, _, tail = last_event_id.strip().partition("-")
        return cls(int(head), int(tail or 0))

    def __str__(self) -> str:
        return f"{self.event}-{self.metric}"


@dataclass
class _Batch:
    """What one database read or one channel message brings."""

    points: list[list[Any]] = field(default_factory=list)  # [id, experiment, name, step, ...]
    events: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    full: bool = False  # a page was full: read again


def _read(url: str, ids: list[str], after_event: int, after_metric: int) -> _Batch:
    with session_scope(url) as session:
        points = metrics_repo.points_after_id_many(session, ids, after_metric, BATCH)
        rows = repo.events_after_many(session, ids, after_event, BATCH)
        events = [live.event_row(row) for row in rows]
        progress = repo.progress_of(session, ids)
    return _Batch(points, events, progress, full=len(points) == BATCH or len(rows) == BATCH)


class Stream:
    """One client's stream over some experiments (one, or a sweep's)."""

    def __init__(
        self,
        *,
        settings: Settings,
        hub: Hub,
        experiment_ids: Sequence[str],
        cursor: Cursor,
        tagged: bool,
    ) -> None:
        self.settings, self.hub, self.ids = settings, hub, list(experiment_ids)
        self.cursor = cursor
        self.tagged = tagged  # a sweep stream: every payload names its experiment
        self.seen_event = dict.fromkeys(self.ids, cursor.event)
        self.seen_metric = dict.fromkeys(self.ids, cursor.metric)
        self.sent_progress: dict[str, dict[str, Any]] = {}
        self.status: dict[str, str | None] = dict.fromkeys(self.ids)

    async def events(self) -> AsyncIterator[ServerSentEvent]:
        """Replay, then live, until every experiment ended or the maximum duration passed."""
        sub = await self.hub.subscribe(self.ids)
        try:
            async for message in self._run(sub):
                yield message
        finally:
            self.hub.unsubscribe(sub)

    async def _run(self, sub: Subscription) -> AsyncIterator[ServerSentEvent]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.stream_max_seconds
        for message in await self._catch_up(self.ids):
            yield message
        while not self._ended():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return  # no `end`: the client reconnects with its Last-Event-ID
            news = await sub.get(min(remaining, self.settings.stream_recheck_seconds))
            if news is LOST:
                return
            if news is None or sub.overflowed:  # quiet for long, or messages dropped
                sub.overflowed = False
                batch_messages = await self._catch_up(self.ids)
            elif _may_hide_rows(news):
                batch_messages = await self._catch_up([news["experiment_id"]])
            else:
                batch_messages = self._render(_from_channel(news))
            for message in batch_messages:
                yield message
        yield self._end()

    async def _catch_up(self, ids: list[str]) -> list[ServerSentEvent]:
        out: list[ServerSentEvent] = []
        while ids:
            after_event = min(self.seen_event[i] for i in ids)
            after_metric = min(self.seen_metric[i] for i in ids)
            url = self.settings.resolved_database_url
            async with self.hub.db_slots:
                batch = await asyncio.to_thread(_read, url, ids, after_event, after_metric)
            out.extend(self._render(batch))
            if not batch.full:
                break
        return out

    def _render(self, batch: _Batch) -> list[ServerSentEvent]:
        out: list[ServerSentEvent] = []
        points = [p for p in batch.points if p[0] > self.seen_metric.get(p[1], 1 << 62)]
        if points:
            for point in points:
                self.seen_metric[point[1]] = point[0]
            self.cursor.metric = max(self.cursor.metric, points[-1][0])
            out.append(self._sse("metrics", [self._point(p) for p in points]))
        for row in batch.events:
            experiment_id = row["experiment_id"]
            if row["id"] <= self.seen_event.get(experiment_id, 1 << 62):
                continue
            self.seen_event[experiment_id] = row["id"]
            self.cursor.event = max(self.cursor.event, row["id"])
            if row["kind"] == "status" and row["status"]:
                self.status[experiment_id] = row["status"]
            payload = row if self.tagged else {k: v for k, v in row.items() if k != "experiment_id"}
            out.append(self._sse(row["kind"], payload))
        for experiment_id, progress in batch.progress.items():
            self.status[experiment_id] = progress["status"]
            if self.sent_progress.get(experiment_id) != progress:
                self.sent_progress[experiment_id] = progress
                payload = {"experiment_id": experiment_id, **progress} if self.tagged else progress
                out.append(self._sse("progress", payload))
        return out

    def _point(self, point: list[Any]) -> dict[str, Any]:
        _, experiment_id, name, step, epoch, value = point
        body = {"name": name, "step": step, "epoch": epoch, "value": value}
        return {"experiment_id": experiment_id, **body} if self.tagged else body

    def _ended(self) -> bool:
        return all(s is None or s in TERMINAL_VALUES for s in self.status.values())

    def _end(self) -> ServerSentEvent:
        if not self.tagged:
            return self._sse("end", {"status": self.status[self.ids[0]]})
        counts = Counter(s for s in self.status.values() if s is not None)
        return self._sse("end", {"experiment_id": None, "status": "ended", "counts": counts})

    def _sse(self, kind: str, data: Any) -> ServerSentEvent:
        text = json.dumps(data, separators=(",", ":"), default=str)
        return ServerSentEvent(data=text, event=kind, id=str(self.cursor), sep="\n")


TERMINAL_VALUES = frozenset(s.value for s in TERMINAL)


def _may_hide_rows(news: dict[str, Any]) -> bool:
    """Whether the database may hold rows of this experiment that were never published.

    A publish failed (`resync`), or the experiment went back to the queue or a new attempt
    began: the previous attempt's worker may have died between a commit and its publish.
    """
    if news["resync"]:
        return True
    for row in news["events"]:
        if row["kind"] != "status":
            continue
        attempt = (row.get("data") or {}).get("attempt", 1)
        if row["status"] == "queued" or (row["status"] == "running" and attempt != 1):
            return True
    return False


def _from_channel(news: dict[str, Any]) -> _Batch:
    experiment_id = news["experiment_id"]
    points = [[p[0], experiment_id, *p[1:]] for p in news["metrics"]]
    progress = {experiment_id: news["progress"]} if news["progress"] else {}
    return _Batch(points=points, events=list(news["events"]), progress=progress)


def respond(
    request: Request,
    session: Session,
    settings: Settings,
    principal: Principal,
    experiment_ids: Sequence[str],
    cursor: Cursor,
    *,
    tagged: bool,
) -> EventSourceResponse:
    """A stream over these experiments (access already checked), admitted under the caps."""
    hub = hub_of(request.app)
    ticket = hub.admit(principal.owner_id)
    # The stream outlives the request: end the request's transaction and give its
    # connection back now (with auth on, the key lookup began one, which on SQLite holds
    # the write lock). The stream reads the database in short sessions of its own.
    session.commit()
    session.close()
    stream = Stream(
        settings=settings, hub=hub, experiment_ids=experiment_ids, cursor=cursor, tagged=tagged
    )

    async def guarded() -> AsyncIterator[ServerSentEvent]:
        try:
            async for message in stream.events():
                yield message
        finally:
            ticket.release()

    return EventSourceResponse(
        guarded(),
        ping=KEEPALIVE_SECONDS,
        sep="\n",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        background=BackgroundTask(ticket.release),
    )
