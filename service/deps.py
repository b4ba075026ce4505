"""Annotated dependencies: settings, and the request's session, which owns the transaction."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from sqlalchemy.orm import Session

from core.settings import Settings
from core.store.db import session_scope
from service.experiments.cursor import MAX_HEADER, STREAM_ID_PATTERN


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    """The request's unit of work (`session_scope`): commits when the endpoint returns, rolls
    back when it raises, then runs the after-commit actions (sending tasks).

    `scope="function"` runs this exit code when the endpoint returns, before the response
    is sent, so a client that gets 201 can read what it created. (The default scope runs it
    after the response has gone out: a GET right after a 201 could then find nothing.) A
    streamed response therefore never holds the request's session: streams open their own.
    """
    with session_scope(settings.resolved_database_url) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


@dataclass(frozen=True)
class PageQuery:
    """`limit` and `cursor` of a list that pages newest first (`store.pages.newest_first`)."""

    limit: Annotated[int, Query(ge=1, le=500)] = 50
    cursor: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_]+$")] = None


PageDep = Annotated[PageQuery, Depends()]


@dataclass(frozen=True)
class EventsQuery:
    """What the experiment and sweep `/events` routes take: a page, or a stream to resume."""

    after: int
    limit: int
    stream: bool
    last_event_id: str


def get_events_query(
    request: Request,
    after: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="Only events with a larger id.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    stream: Annotated[bool, Query(description="Server-Sent Events (or Accept).")] = False,
    last_event_id: Annotated[
        str,
        Header(
            max_length=MAX_HEADER,
            pattern=STREAM_ID_PATTERN,
            description="Resume a stream after this id (`E-M[/k:a-b,...]`, as it sent).",
        ),
    ] = "",
) -> EventsQuery:
    streamed = stream or "text/event-stream" in request.headers.get("accept", "")
    return EventsQuery(after=after, limit=limit, stream=streamed, last_event_id=last_event_id)


EventsDep = Annotated[EventsQuery, Depends(get_events_query)]
