"""The scheduler's view of the database: queued units, owners' knobs and decayed usage,
live workers, and each workload's measured speed, as core.scheduling.policy's inputs."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session

from core.scheduling.policy import OwnerState, Unit, WorkerSlot, decayed
from core.settings import Settings
from core.store.models import Attempt, Experiment, Owner, Status, Worker, utcnow

_HELD = (Status.running.value, Status.cancelling.value)
# Past this many half-lives an attempt's worker time weighs under 0.1%: not read.
_HORIZON_HALF_LIVES = 10
# The measured speed of a workload: the median of its last this many succeeded runs.
_SPEED_SAMPLES = 20
# Stable 64-bit keys for Postgres's advisory locks.
_CLAIM_LOCK = 0x61636C6162  # "aclab"
_OWNER_LOCK_SPACE = 0x6163


def lock_claims(session: Session) -> None:
    """Serialise claims (and preemption decisions) across every worker host.

    On Postgres a transaction-scoped advisory lock, held until the commit; on SQLite the
    transaction's BEGIN IMMEDIATE already holds the one write lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK})


def lock_owner(session: Session, owner: str | None) -> None:
    """Serialise one owner's inserts, so that a count and the insert it admits are atomic
    (the queued cap). SQLite: BEGIN IMMEDIATE already does."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:space, hashtext(:owner))"),
            {"space": _OWNER_LOCK_SPACE, "owner": owner or ""},
        )


@dataclass
class Snapshot:
    """Everything the policy needs, read in one transaction."""

    now: datetime
    units: list[Unit]
    owners: dict[str, OwnerState]
    workers: list[WorkerSlot]
    running: list[RunningUnit]


@dataclass(frozen=True)
class RunningUnit:
    worker: str
    owner: str
    ids: tuple[str, ...]
    priority: int
    started_at: datetime | None
    preempt_requested: bool
    remaining: float | None  # estimated seconds left


def owner_knobs(session: Session, owners: set[str]) -> dict[str, OwnerState]:
    rows = list(session.scalars(select(Owner).where(Owner.owner.in_(owners)))) if owners else []
    knobs = {o: OwnerState() for o in owners}
    for row in rows:
        knobs[row.owner] = OwnerState(weight=row.weight, max_running=row.max_running)
    return knobs


def usage(session: Session, now: datetime, half_life: float) -> dict[str, float]:
    """Each owner's decayed worker-seconds, running attempts counted up to now."""
    since = now - timedelta(seconds=_HORIZON_HALF_LIVES * half_life)
    rows = session.execute(
        select(Attempt.owner, Attempt.share, Attempt.started_at, Attempt.ended_at).where(
            or_(Attempt.ended_at.is_(None), Attempt.ended_at > since)
        )
    )
    out: dict[str, float] = defaultdict(float)
    for owner, share, started, ended in rows:
        start = (started - now).total_seconds()
        end = 0.0 if ended is None else (ended - now).total_seconds()
        out[owner] += share * decayed(start, end, 0.0, half_life)
    return out


def speeds(session: Session, workloads: set[str]) -> dict[str, float]:
    """Seconds per step of each workload, from its last succeeded runs on this deployment."""
    if not workloads:
        return {}
    rows = session.execute(
        select(Experiment.workload, Experiment.summary)
        .where(Experiment.status == Status.succeeded.value, Experiment.workload.in_(workloads))
        .order_by(Experiment.finished_at.desc())
        .limit(_SPEED_SAMPLES * len(workloads) * 4)
    )
    samples: dict[str, list[float]] = defaultdict(list)
    for workload, summary in rows:
        rate = _rate(summary)
        if rate is not None and len(samples[workload]) < _SPEED_SAMPLES:
            samples[workload].append(rate)
    return {w: statistics.median(r) for w, r in samples.items() if r}


def _rate(summary: dict[str, Any] | None) -> float | None:
    if not summary:
        return None
    wall, steps = summary.get("wall_time_s"), summary.get("steps")
    if not isinstance(wall, (int, float)) or not isinstance(steps, (int, float)) or steps <= 0:
        return None
    return float(wall) / float(steps)


def live_workers(session: Session, now: datetime, settings: Settings) -> list[Worker]:
    """Workers seen within a lease: the ones that can claim."""
    since = now - timedelta(seconds=settings.lease_seconds)
    return list(session.scalars(select(Worker).where(Worker.seen_at > since).order_by(Worker.name)))


def snapshot(session: Session, settings: Settings) -> Snapshot:
    now = utcnow()
    rows = session.execute(
        select(
            Experiment.id,
            Experiment.owner_id,
            Experiment.sweep_id,
            Experiment.pack_id,
            Experiment.priority,
            Experiment.memory_bytes,
            Experiment.workload,
            Experiment.progress_step,
            Experiment.progress_total,
            Experiment.status,
            Experiment.lease_owner,
            Experiment.lease_expires_at,
            Experiment.started_at,
            Experiment.preempt_requested_at,
        ).where(Experiment.status.in_((Status.queued.value, *_HELD)))
    ).all()
    queued = [r for r in rows if r.status == Status.queued.value]
    held = [r for r in rows if r.status != Status.queued.value]
    rate = speeds(session, {r.workload for r in rows if r.workload})
    fallback = statistics.median(rate.values()) if rate else None

    def seconds(r: Any) -> float | None:
        per_step = rate.get(r.workload, fallback)
        if per_step is None or r.progress_total is None:
            return None
        return per_step * max(0, r.progress_total - (r.progress_step or 0))

    # Units: a pack's queued members are one unit (the pack is claimed whole).
    held_packs = {
        r.pack_id for r in held if r.pack_id and r.lease_expires_at and r.lease_expires_at >= now
    }
    grouped: dict[str, list[Any]] = defaultdict(list)
    for r in sorted(queued, key=lambda r: r.id):
        grouped[r.pack_id or r.id].append(r)
    units = []
    for rs in grouped.values():
        head = rs[0]
        durations = [seconds(r) for r in rs]
        sizes = [r.memory_bytes for r in rs if r.memory_bytes is not None]
        units.append(
            Unit(
                ids=tuple(r.id for r in rs),
                owner=head.owner_id or "",
                group=head.sweep_id or "",
                priority=max(r.priority for r in rs),
                order=_order(head.id),
                memory_bytes=max(sizes) if sizes else None,
                seconds=None if None in durations else max(d for d in durations if d is not None),
                held=head.pack_id in held_packs,
            )
        )
    # Running units: one per worker holding a lease.
    by_worker: dict[str, list[Any]] = defaultdict(list)
    for r in held:
        by_worker[r.lease_owner or r.id].append(r)
    running: list[RunningUnit] = []
    for worker, rs in by_worker.items():
        left = [seconds(r) for r in rs]
        running.append(
            RunningUnit(
                worker=worker,
                owner=rs[0].owner_id or "",
                ids=tuple(r.id for r in rs),
                priority=max(r.priority for r in rs),
                started_at=min((r.started_at for r in rs if r.started_at), default=None),
                preempt_requested=any(r.preempt_requested_at is not None for r in rs),
                remaining=None if None in left else max(x for x in left if x is not None),
            )
        )
    names = {u.owner for u in units} | {r.owner for r in running}
    owners = owner_knobs(session, names)
    for name, used in usage(session, now, settings.fair_share_half_life_seconds).items():
        if name in owners:
            owners[name].usage = used
    for unit_on in running:
        owners[unit_on.owner].running += 1
    on = {u.worker: u for u in running}
    workers = []
    for w in live_workers(session, now, settings):
        unit = on.get(w.name)
        workers.append(
            WorkerSlot(
                name=w.name,
                memory_bytes=w.memory_bytes,
                busy_for=0.0 if unit is None else unit.remaining,
                running_owner=None if unit is None else unit.owner,
            )
        )
    return Snapshot(now, units, owners, workers, running)


def _order(experiment_id: str) -> int:
    """Submission order from the id (milliseconds then randomness, core.store.models.new_id)."""
    return int(experiment_id.split("_", 1)[1], 16)
