"""GET /v1/sweeps/{id}/events: every experiment of a sweep on one stream (or one page)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from core.store import sweeps as sweeps_repo
from service.access import SweepDep
from service.experiments import events

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])


@router.get("/{sweep_id}/events", **events.ROUTE)
def get_sweep_events(sweep: SweepDep, events_request: events.EventsRequestDep) -> Any:
    """The events of all the sweep's experiments; as SSE (each payload naming its
    `experiment_id`, with progress and metric points) until every experiment ended."""
    ids = [row.id for row in sweeps_repo.experiments_of(events_request.session, sweep.id)]
    return events_request.answer(ids, tagged=True)
