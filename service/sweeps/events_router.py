"""GET /v1/sweeps/{id}/events: every experiment of a sweep on one stream (or one page)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from service.access import SweepDep
from service.auth import PrincipalDep
from service.deps import EventsDep, SessionDep, SettingsDep
from service.experiments import events
from service.experiments.cursor import Cursor
from service.experiments.schemas import EventList
from service.store import experiments as repo
from service.store import sweeps as sweeps_repo

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])


@router.get(
    "/{sweep_id}/events",
    response_model=EventList,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def get_sweep_events(
    sweep: SweepDep,
    query: EventsDep,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> Any:
    """The events of all the sweep's experiments; as SSE (each payload naming its
    `experiment_id`, with progress and metric points) until every experiment ended."""
    ids = [row.id for row in sweeps_repo.experiments_of(session, sweep.id)]
    if query.stream:
        cursor = Cursor.parse(query.last_event_id, query.after, ids)
        return events.respond(request, settings, principal, ids, cursor, tagged=True)
    rows = repo.events_after_many(session, ids, query.after, query.limit) if ids else []
    items = [{**events.event_json(e), "experiment_id": e.experiment_id} for e in rows]
    return EventList(events=items, next_after=items[-1]["id"] if items else query.after)  # type: ignore[arg-type]
