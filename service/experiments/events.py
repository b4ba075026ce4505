"""Experiments' events as JSON pages, and live streams as Server-Sent Events.

A stream subscribes to the live channel first, then replays from the database everything
after the client's id, then sends what the channel brings. Every message carries an id
that says, per experiment, the largest event id and metric-point id sent (`E-M` for one
experiment; see service/experiments/cursor.py for a sweep's). A reconnect with that
`Last-Event-ID` replays, per experiment, the rows with larger ids, so nothing is lost or
sent twice, whatever happened meanwhile (a worker died, an attempt resumed). A message
from the channel is used as it is, except when the database may hold rows that were never
published: a message flagged `resync` (a publish failed), or a status event that sends the
experiment back to the queue or starts a later attempt (the previous worker may have died
between a commit and its publish); then the stream re-reads that experiment.

The fan-out costs little per stream: the hub parses each message once into a `Batch`
whose payloads are encoded once (service/experiments/frames.py); a stream filters by its
cursor, adds its `id:` and writes everything one wakeup brought in one write. Streams that
need the same database read at the same time share it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask

from core.settings import Settings
from core.store import experiments as repo
from core.store import metrics as metrics_repo
from core.store import publish
from core.store.db import session_scope
from core.store.models import TERMINAL, Event
from service.auth import Principal, PrincipalDep
from service.deps import EventsDep, EventsQuery, SessionDep, SettingsDep
from service.experiments import frames
from service.experiments.cursor import Cursor
from service.experiments.frames import Batch
from service.experiments.live import Hub, Subscription, Ticket, hub_of
from service.experiments.schemas import EventList

log = logging.getLogger("actlab.live")
KEEPALIVE_SECONDS = 15.0
SEND_TIMEOUT_SECONDS = 30.0  # a write blocked this long (a client that stopped reading) ends it
BATCH = 1000  # rows per table per database read; a longer backlog takes several reads
NEVER = 1 << 62  # an experiment not in this stream: no row of it is ever rendered


def event_json(event: Event) -> dict[str, Any]:
    row = publish.event_row(event)
    del row["experiment_id"]
    return row


def _after(cursors: dict[str, int]) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """{experiment: id} grouped as ((id, experiments), ...), a hashable read key."""
    groups: dict[int, list[str]] = {}
    for experiment_id, after in cursors.items():
        groups.setdefault(after, []).append(experiment_id)
    return tuple(sorted((after, tuple(sorted(ids))) for after, ids in groups.items()))


def _read(url: str, events_after: Any, points_after: Any) -> Batch:
    with session_scope(url) as session:
        points = metrics_repo.points_after_ids(session, dict(points_after), BATCH)
        rows = repo.events_after_ids(session, dict(events_after), BATCH)
        events = [publish.event_row(row) for row in rows]
        ids = sorted({i for _, group in events_after for i in group})
        progress = repo.progress_of(session, ids)
    return Batch(points, events, progress, full=len(points) == BATCH or len(rows) == BATCH)


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
        self.cursor = cursor  # per experiment: the largest event and point id delivered
        self.tagged = tagged  # a sweep stream: every payload names its experiment
        self.sent_progress: dict[str, dict[str, Any]] = {}
        self.status: dict[str, str | None] = dict.fromkeys(self.ids)
        self.ticket: Ticket | None = None  # released when the stream ends, however it ends

    async def events(self) -> AsyncIterator[bytes]:
        """Replay, then live, until every experiment ended or the maximum duration passed.

        One generator from subscription to end (each layer of `async for` costs every
        frame of every stream a hop).
        """
        sub: Subscription | None = None
        try:
            sub = await self.hub.subscribe(self.ids)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.settings.stream_max_seconds
            if first := b"".join(await self._catch_up(self.ids, sub.tick)):
                yield first
            while not self._ended():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return  # no `end`: the client reconnects with its Last-Event-ID
                waited_from = self.hub.now()
                news = await sub.get(min(remaining, self.settings.stream_recheck_seconds))
                if sub.closed is not None:
                    yield frames.comment(f"closed: {sub.closed}; reconnect with Last-Event-ID")
                    return
                out: list[bytes] = []
                if not news:  # quiet for long: re-read the database once
                    out += await self._catch_up(self.ids, waited_from)
                for batch in news:
                    if batch.hides_rows:
                        out += await self._catch_up([batch.experiment_id or ""], batch.tick)
                    else:
                        out += self._render(batch)
                if out:
                    yield b"".join(out)  # one write for everything this wakeup brought
            yield self._end()
        except SQLAlchemyError as exc:  # a database read failed (busy, restarting): the
            # client reconnects with its id, instead of a connection reset mid-body
            log.warning("stream read failed: %s", type(exc).__name__)
            yield frames.comment(f"closed: database read failed ({type(exc).__name__})")
        finally:
            if sub is not None:
                self.hub.unsubscribe(sub)
            if self.ticket is not None:
                self.ticket.release()

    async def _catch_up(self, ids: list[str], not_before: int) -> list[bytes]:
        out: list[bytes] = []
        url = self.settings.resolved_database_url
        while ids:
            events_after = _after({i: self.cursor.events[i] for i in ids})
            points_after = _after({i: self.cursor.metrics[i] for i in ids})
            batch = await self.hub.read(
                (url, events_after, points_after),
                functools.partial(_read, url, events_after, points_after),
                not_before=not_before,
            )
            out += self._render(batch, replay=True)
            if not batch.full:
                break
        return out

    def _render(self, batch: Batch, *, replay: bool = False) -> list[bytes]:
        """A batch's frames. A live message is in the order it happened (its points, then
        the events after them); a database read (`replay`) holds two tables read apart, so
        each experiment's events up to its latest `running` are sent before the points and
        the rest after them, as they happened: a replay shows queued and running, then the
        metrics, then how it ended. When more points remain to be read than this page
        holds, those later events wait for the page that ends the points (their cursor does
        not move, so the next read brings them again). A run of several attempts replays
        every attempt's status before their points, which carry no time of their own."""
        early, late = _split(batch.events) if replay else ([], list(range(len(batch.events))))
        out = self._render_events(batch, early)
        if batch.points:
            out += self._render_points(batch)
        if replay and len(batch.points) >= BATCH:
            return out  # the next page's progress is as new as this one's
        out += self._render_events(batch, late)
        metrics = self.cursor.metrics
        for experiment_id, progress in batch.progress.items():
            if experiment_id not in metrics:
                continue
            self.status[experiment_id] = progress["status"]
            if self.sent_progress.get(experiment_id) != progress:
                self.sent_progress[experiment_id] = progress
                data = batch.progress_data(experiment_id, self.tagged)
                out.append(frames.frame("progress", self._id(), data))
        return out

    def _render_events(self, batch: Batch, indexes: list[int]) -> list[bytes]:
        out: list[bytes] = []
        events = self.cursor.events
        for index in indexes:
            row = batch.events[index]
            experiment_id = row["experiment_id"]
            if row["id"] <= events.get(experiment_id, NEVER):
                continue
            events[experiment_id] = row["id"]
            if row["kind"] == "status" and row["status"]:
                self.status[experiment_id] = row["status"]
            out.append(frames.frame(row["kind"], self._id(), batch.event_data(index, self.tagged)))
        return out

    def _render_points(self, batch: Batch) -> list[bytes]:
        metrics = self.cursor.metrics
        points = batch.points
        if batch.experiment_id is not None:  # one experiment, in id order: check the first
            seen = metrics.get(batch.experiment_id, NEVER)
            if points[0][0] <= seen:
                points = [p for p in points if p[0] > seen]
        else:
            points = [p for p in points if p[0] > metrics.get(p[1], NEVER)]
        if not points:
            return []
        for point in points:
            metrics[point[1]] = point[0]
        if len(points) == len(batch.points):
            data = batch.points_data(self.tagged)  # the bytes every stream shares
        else:
            data = frames.dumps([frames.point_json(p, self.tagged) for p in points])
        return [frames.frame("metrics", self._id(), data)]

    def _id(self) -> str:
        if not self.tagged:
            return self.cursor.single(self.ids[0])
        return self.cursor.sweep(self.ids, lambda i: self.status[i] in TERMINAL_VALUES)

    def _ended(self) -> bool:
        return all(s is None or s in TERMINAL_VALUES for s in self.status.values())

    def _end(self) -> bytes:
        if not self.tagged:
            data = frames.dumps({"status": self.status[self.ids[0]]})
        else:
            counts = Counter(s for s in self.status.values() if s is not None)
            data = frames.dumps({"experiment_id": None, "status": "ended", "counts": counts})
        return frames.frame("end", self._id(), data)


TERMINAL_VALUES = frozenset(s.value for s in TERMINAL)
RUNNING = "running"


def _split(events: list[dict[str, Any]]) -> tuple[list[int], list[int]]:
    """Indexes of a read's events that precede its points (each experiment's up to its
    latest `running` status) and of those that follow them, each in id order."""
    last_start: dict[str, int] = {}
    for index, row in enumerate(events):
        if row["kind"] == "status" and row["status"] == RUNNING:
            last_start[row["experiment_id"]] = index
    early: list[int] = []
    late: list[int] = []
    for index, row in enumerate(events):
        before = index <= last_start.get(row["experiment_id"], -1)
        (early if before else late).append(index)
    return early, late


def respond(
    request: Request,
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
    # The stream outlives the request: the request's session (`SessionDep`) has ended by the
    # time the first frame is sent, and the stream reads the database in short sessions of
    # its own.
    stream = Stream(
        settings=settings, hub=hub, experiment_ids=experiment_ids, cursor=cursor, tagged=tagged
    )
    stream.ticket = ticket

    return EventSourceResponse(
        stream.events(),
        ping=KEEPALIVE_SECONDS,
        send_timeout=SEND_TIMEOUT_SECONDS,
        sep="\n",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        background=BackgroundTask(ticket.release),
    )


# The declaration both `/events` routes share (the experiment's and the sweep's).
ROUTE: dict[str, Any] = {
    "response_model": EventList,
    "responses": {200: {"content": {"text/event-stream": {}}}},
}


@dataclass(frozen=True)
class EventsRequest:
    """One `/events` request: a page of events, or a stream (SSE) to resume."""

    query: EventsQuery
    request: Request
    session: Session
    settings: Settings
    principal: Principal

    def answer(self, experiment_ids: list[str], *, tagged: bool) -> Any:
        """The page or the stream over these experiments (access already checked); `tagged`
        (a sweep's) names each event's experiment."""
        q = self.query
        if q.stream:
            cursor = Cursor.parse(q.last_event_id, q.after, experiment_ids)
            return respond(
                self.request, self.settings, self.principal, experiment_ids, cursor, tagged=tagged
            )
        rows = (
            repo.events_after_many(self.session, experiment_ids, q.after, q.limit)
            if experiment_ids
            else []
        )
        items = [event_json(e) for e in rows]
        if tagged:
            for item, e in zip(items, rows, strict=True):
                item["experiment_id"] = e.experiment_id
        return EventList(events=items, next_after=items[-1]["id"] if items else q.after)  # type: ignore[arg-type]


def get_events_request(
    query: EventsDep,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> EventsRequest:
    return EventsRequest(query, request, session, settings, principal)


EventsRequestDep = Annotated[EventsRequest, Depends(get_events_request)]
