"""GET /v1/sweeps/{id}/events: every experiment of a sweep on one stream (or one page)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request

from service.auth import PrincipalDep
from service.deps import SessionDep, SettingsDep
from service.experiments import events
from service.experiments.schemas import EventList
from service.store import experiments as repo
from service.store import sweeps as sweeps_repo
from service.sweeps import service

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])


@router.get(
    "/{sweep_id}/events",
    response_model=EventList,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def get_sweep_events(
    sweep_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    after: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="Only events with a larger id.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    stream: Annotated[bool, Query(description="Server-Sent Events (or Accept).")] = False,
    last_event_id: Annotated[
        str,
        Header(
            max_length=48,
            pattern=events.STREAM_ID_PATTERN,
            description="Resume a stream after this id (`E-M`).",
        ),
    ] = "",
) -> Any:
    """The events of all the sweep's experiments; as SSE (each payload naming its
    `experiment_id`, with progress and metric points) until every experiment ended."""
    service.get_sweep(session=session, sweep_id=sweep_id, principal=principal)
    ids = [row.id for row in sweeps_repo.experiments_of(session, sweep_id)]
    if stream or "text/event-stream" in request.headers.get("accept", ""):
        cursor = events.Cursor.parse(last_event_id, after)
        return events.respond(request, session, settings, principal, ids, cursor, tagged=True)
    rows = repo.events_after_many(session, ids, after, limit) if ids else []
    items = [{**events.event_json(e), "experiment_id": e.experiment_id} for e in rows]
    return EventList(events=items, next_after=items[-1]["id"] if items else after)  # type: ignore[arg-type]
