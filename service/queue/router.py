"""`GET /v1/queue`: the caller's running and queued work in the policy's order."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from core import scheduling
from core.store.models import Experiment
from service.auth import PrincipalDep
from service.deps import SessionDep, SettingsDep
from service.queue import view
from service.queue.schemas import QueueRead

router = APIRouter(prefix="/v1/queue", tags=["queue"])


@router.get("", response_model=QueueRead)
def get_queue(session: SessionDep, settings: SettingsDep, principal: PrincipalDep) -> Any:
    """Where your work stands: position, what is ahead (other owners' as counts only), why
    it waits and when it should start."""
    queue = scheduling.queue_view(session, settings)
    ids = [i for p in queue.placements for i in p.unit.ids]
    ids += [i for r in queue.snapshot.running for i in r.ids]
    rows = {r.id: r for r in session.scalars(select(Experiment).where(Experiment.id.in_(ids)))}
    return view.build(queue, rows, principal, policy=settings.scheduler)
