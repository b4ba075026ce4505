"""What runs next on a shared box: the policy (policy.py, pure), the database's view of the
queue (state.py), and the three decisions made from it here, each in one transaction under
the claim lock: the unit a free worker claims, the runs asked to give their worker up to a
higher priority (preemption), and every queued experiment's place (the queue view).

Queue messages only wake workers: whichever message arrives, the worker claims what the
policy picks now, so a lost, duplicate or out-of-order message changes nothing.
docs/scheduling.md describes the policy for users.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from core.scheduling.policy import REASONS, Placement, Queue, Unit, fits, plan
from core.scheduling.state import Snapshot, lock_claims, lock_owner, snapshot
from core.settings import Settings
from core.store.experiments import add_event
from core.store.models import Experiment

__all__ = [
    "REASONS",
    "Placement",
    "QueueView",
    "Unit",
    "lock_claims",
    "lock_owner",
    "next_unit",
    "preempt",
    "queue_view",
]


def next_unit(
    session: Session,
    settings: Settings,
    *,
    memory_bytes: int | None,
    exclude: Collection[str] = (),
) -> Unit | None:
    """The unit the policy gives a free worker with `memory_bytes` now (call under
    `lock_claims`, and claim it in the same transaction)."""
    snap = snapshot(session, settings)
    units = [u for u in snap.units if u.ids[0] not in exclude]
    return Queue(units, snap.owners, fifo=settings.scheduler == "fifo").pick(memory_bytes)


def preempt(session: Session, settings: Settings) -> list[str]:
    """Ask running runs of a lower priority to give their workers up to the queued runs of a
    higher priority that no free worker will take; the ids asked.

    One victim per waiting unit, the lowest priority first (then the most recently
    started); a run that started within `preempt_grace_seconds` is never asked, so no run
    is preempted again before it has run that long. A request already made counts as a
    worker on its way, so repeated passes ask no more than needed.
    """
    lock_claims(session)
    snap = snapshot(session, settings)
    if not snap.workers or settings.scheduler == "fifo":
        return []
    queue = Queue(snap.units, snap.owners)
    for worker in snap.workers:  # the idle workers take their units without preemption
        if worker.running_owner is None:
            queue.pick(worker.memory_bytes)
    grace = snap.now - timedelta(seconds=settings.preempt_grace_seconds)
    live = {w.name: w for w in snap.workers}
    pending = [r for r in snap.running if r.preempt_requested]
    victims = sorted(
        (
            r
            for r in snap.running
            if not r.preempt_requested
            and r.worker in live
            and r.started_at is not None
            and r.started_at <= grace
        ),
        key=lambda r: (r.priority, -(r.started_at.timestamp() if r.started_at else 0.0)),
    )
    asked: list[str] = []
    while (unit := queue.pick(None)) is not None:
        on_way = next((r for r in pending if r.priority < unit.priority), None)
        if on_way is not None:
            pending.remove(on_way)
            continue
        victim = next(
            (
                r
                for r in victims
                if r.priority < unit.priority and fits(unit, live[r.worker].memory_bytes)
            ),
            None,
        )
        if victim is None:
            break
        victims.remove(victim)
        session.execute(
            update(Experiment)
            .where(Experiment.id.in_(victim.ids), Experiment.status == "running")
            .values(preempt_requested_at=snap.now)
            .execution_options(synchronize_session=False)
        )
        for experiment_id in victim.ids:
            add_event(
                session,
                experiment_id,
                "log",
                f"preemption asked: a run of priority {unit.priority} waits for a worker",
                data={"reason": "preempted", "for_priority": unit.priority},
            )
        asked.extend(victim.ids)
    return asked


@dataclass(frozen=True)
class QueueView:
    """The queue now: each queued unit's placement in the policy's order, and the running
    units, with the snapshot they were computed from."""

    placements: list[Placement]
    snapshot: Snapshot

    def of(self, experiment_id: str) -> tuple[int, Placement] | None:
        """(position from 1, placement) of a queued experiment; None if it is not queued."""
        for placement in self.placements:
            if experiment_id in placement.unit.ids:
                return placement.ahead + 1 + placement.unit.ids.index(experiment_id), placement
        return None


def queue_view(session: Session, settings: Settings) -> QueueView:
    snap = snapshot(session, settings)
    placements = plan(snap.units, snap.owners, snap.workers, fifo=settings.scheduler == "fifo")
    return QueueView(placements, snap)
