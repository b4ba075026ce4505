"""The queue as one caller may see it: their own work whole, other owners' as counts."""

from __future__ import annotations

from core import scheduling
from core.scheduling import Placement, QueueView
from core.store.models import Experiment
from service.auth import Principal
from service.experiments.schemas import Progress
from service.queue.schemas import OtherWork, QueueItem, QueuePlace, QueueRead, Workers


def place(queue: QueueView, experiment_id: str, principal: Principal) -> QueuePlace | None:
    """A queued experiment's place; None when it is not queued."""
    found = queue.of(experiment_id)
    if found is None:
        return None
    position, placement = found
    return _place(queue, position, placement, principal)


def _place(
    queue: QueueView, position: int, placement: Placement, principal: Principal
) -> QueuePlace:
    mine = placement.unit.owner
    others = 0
    for p in queue.placements:
        if p is placement:
            break
        if p.unit.owner != mine:
            others += len(p.unit.ids)
    return QueuePlace(
        position=position,
        ahead=position - 1,
        ahead_other_owners=others,
        reason=placement.reason,  # type: ignore[arg-type]
        reason_text=scheduling.REASONS[placement.reason],
        eta_seconds=None if placement.eta_seconds is None else round(placement.eta_seconds, 1),
    )


def build(
    queue: QueueView, rows: dict[str, Experiment], principal: Principal, *, policy: str
) -> QueueRead:
    def visible(owner: str) -> bool:
        return principal.can_see(owner or None)

    items: list[QueueItem] = []
    other_running = other_queued = 0
    for r in queue.snapshot.running:
        if not visible(r.owner):
            other_running += len(r.ids)
            continue
        for experiment_id in r.ids:
            row = rows.get(experiment_id)
            if row is not None:
                items.append(_item(row, worker=r.worker, remaining=r.remaining))
    for placement in queue.placements:
        if not visible(placement.unit.owner):
            other_queued += len(placement.unit.ids)
            continue
        for i, experiment_id in enumerate(placement.unit.ids):
            row = rows.get(experiment_id)
            if row is not None:
                position = placement.ahead + 1 + i
                items.append(_item(row, place=_place(queue, position, placement, principal)))
    live = len(queue.snapshot.workers)
    busy = sum(1 for w in queue.snapshot.workers if w.running_owner is not None)
    return QueueRead(
        policy=policy,  # type: ignore[arg-type]
        items=items,
        others=OtherWork(queued=other_queued, running=other_running),
        workers=Workers(live=live, busy=busy),
    )


def _item(
    row: Experiment,
    *,
    place: QueuePlace | None = None,
    worker: str | None = None,
    remaining: float | None = None,
) -> QueueItem:
    return QueueItem(
        id=row.id,
        name=row.name,
        owner=row.owner_id,
        sweep_id=row.sweep_id,
        status=row.status,  # type: ignore[arg-type]
        priority=row.priority,
        progress=Progress(**row.progress),
        queue=place,
        worker=worker,
        remaining_seconds=None if remaining is None else round(remaining, 1),
    )
