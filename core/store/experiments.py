"""Experiment rows: creation, the API's transitions (cancel, retry) and the queries.

The worker's fenced writes (claim, renew, finish, recovery) are in core.store.lifecycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from core.spec import ExperimentSpec
from core.spec.horizon import horizon
from core.store import pages
from core.store.models import (
    Event,
    Experiment,
    ExperimentTag,
    Status,
    new_id,
    utcnow,
)


def add_event(
    session: Session,
    experiment_id: str,
    kind: str,
    message: str | None = None,
    *,
    status: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        Event(experiment_id=experiment_id, kind=kind, status=status, message=message, data=data)
    )


def create(
    session: Session,
    *,
    spec: ExperimentSpec,
    owner_id: str | None = None,
    sweep_id: str | None = None,
    memory_bytes: int | None = None,
    fork: dict[str, Any] | None = None,
) -> Experiment:
    """Insert a queued experiment and its first event; the caller commits. A fork's
    `fork` record (models.Experiment.fork) names its parent.

    What the scheduler reads is stored with it: the priority, the memory estimate, the
    workload (dataset/model: runs of one workload share a measured speed) and the length.
    """
    experiment = Experiment(
        id=new_id("exp"),
        name=spec.name,
        owner_id=owner_id,
        sweep_id=sweep_id,
        activation=spec.activation.name,
        tags=list(spec.tags),
        spec=spec.model_dump(mode="json"),
        status=Status.queued.value,
        attempts=0,
        lease_token=0,
        progress_epoch=0,
        progress_step=0,
        progress_total=horizon(spec).total_steps,
        priority=spec.priority,
        memory_bytes=memory_bytes,
        workload=f"{spec.dataset.model_dump()['name']}/{spec.model.model_dump()['arch']}",
        parent_id=fork["parent_id"] if fork else None,
        fork=fork,
    )
    session.add(experiment)
    session.flush()
    session.add_all(ExperimentTag(experiment_id=experiment.id, tag=t) for t in set(spec.tags))
    add_event(session, experiment.id, "status", "queued", status=Status.queued.value)
    session.flush()
    return experiment


def list_page(
    session: Session,
    *,
    limit: int,
    cursor: str | None = None,
    status: str | None = None,
    sweep_id: str | None = None,
    activation: str | None = None,
    tag: str | None = None,
    owner_id: str | None = None,
    parent_id: str | None = None,
) -> tuple[list[Experiment], str | None]:
    """One page, newest first, and the cursor of the next (see `pages.newest_first`)."""
    query = select(Experiment)
    if status:
        query = query.where(Experiment.status == status)
    if sweep_id:
        query = query.where(Experiment.sweep_id == sweep_id)
    if activation:
        query = query.where(Experiment.activation == activation)
    if owner_id:
        query = query.where(Experiment.owner_id == owner_id)
    if parent_id:
        query = query.where(Experiment.parent_id == parent_id)
    if tag:
        query = query.join(ExperimentTag).where(ExperimentTag.tag == tag)
    return pages.newest_first(session, query, limit=limit, cursor=cursor)


def lineage(session: Session, experiment: Experiment) -> list[tuple[str, int | None]]:
    """Whose metric points a read of `experiment` shows, oldest first: each ancestor's id
    with the step its child forked at (its points up to there), then the experiment's own
    (None: all of them). A run of its own is `[(id, None)]`."""
    chain: list[tuple[str, int | None]] = [(experiment.id, None)]
    fork, seen = experiment.fork, {experiment.id}
    while fork and fork["parent_id"] not in seen:
        parent_id, at_step = fork["parent_id"], int(fork["at_step"])
        chain.insert(0, (parent_id, at_step))
        seen.add(parent_id)
        fork = session.scalar(select(Experiment.fork).where(Experiment.id == parent_id))
    return chain


def ids_of_sweep(session: Session, sweep_id: str, owner_id: str | None) -> list[str]:
    """The ids of a sweep's experiments, newest first (only `owner_id`'s, when given)."""
    query = select(Experiment.id).where(Experiment.sweep_id == sweep_id)
    if owner_id:
        query = query.where(Experiment.owner_id == owner_id)
    return list(session.scalars(query.order_by(Experiment.id.desc())))


def mark_enqueued(session: Session, experiment_id: str) -> None:
    session.execute(
        update(Experiment).where(Experiment.id == experiment_id).values(enqueued_at=utcnow())
    )


def request_cancel(session: Session, experiment: Experiment) -> bool:
    """Queued or paused (at a rung) -> cancelled at once; running -> cancelling (the worker
    stops within seconds).

    Returns False when the experiment already ended. Each transition is a guarded UPDATE,
    so a worker that claims the row at the same moment cannot be overwritten silently.
    """
    transitions = (
        (Status.queued, Status.cancelled),
        (Status.paused, Status.cancelled),
        (Status.running, Status.cancelling),
    )
    for old, new in transitions:
        values: dict[str, Any] = {"status": new.value}
        if new == Status.cancelled:
            values.update(
                finished_at=utcnow(),
                status_reason="cancelled",
                status_message="cancelled before it started"
                if old == Status.queued
                else "cancelled while paused at its rung",
            )
        result = session.execute(
            update(Experiment)
            .where(Experiment.id == experiment.id, Experiment.status == old.value)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            add_event(session, experiment.id, "status", f"{new.value} by user", status=new.value)
            session.refresh(experiment)
            return True
    session.refresh(experiment)
    return experiment.status == Status.cancelling.value


def retry(session: Session, experiment: Experiment) -> bool:
    """Failed or cancelled -> queued, keeping its checkpoint so the next attempt resumes."""
    result = session.execute(
        update(Experiment)
        .where(
            Experiment.id == experiment.id,
            Experiment.status.in_([Status.failed.value, Status.cancelled.value]),
        )
        .values(
            status=Status.queued.value,
            status_reason=None,
            status_message=None,
            finished_at=None,
            enqueued_at=utcnow(),
            attempts_at_retry=Experiment.attempts,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    add_event(
        session,
        experiment.id,
        "status",
        "queued again by user (retry)",
        status=Status.queued.value,
        data={"retry": True},
    )
    session.refresh(experiment)
    return True


def count_queued(session: Session, owner_id: str | None) -> int:
    query = (
        select(func.count()).select_from(Experiment).where(Experiment.status == Status.queued.value)
    )
    if owner_id is not None:
        query = query.where(Experiment.owner_id == owner_id)
    return int(session.execute(query).scalar_one())


def events_after(session: Session, experiment_id: str, after: int, limit: int) -> Sequence[Event]:
    """One experiment's events with an id above `after`, in id order."""
    return events_after_many(session, [experiment_id], after, limit)


def sweep_labels(session: Session, experiment_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """experiment id -> its sweep, arm label and seed (None for experiments of no sweep)."""
    if not experiment_ids:
        return {}
    rows = session.execute(
        select(
            Experiment.id, Experiment.sweep_id, Experiment.sweep_arm, Experiment.sweep_seed
        ).where(Experiment.id.in_(list(experiment_ids)))
    )
    return {i: {"sweep_id": s, "arm": a, "seed": seed} for i, s, a, seed in rows}


def events_after_many(
    session: Session, experiment_ids: Sequence[str], after: int, limit: int
) -> Sequence[Event]:
    """Events of several experiments with an id above `after`, in id order."""
    query = (
        select(Event)
        .where(Event.experiment_id.in_(list(experiment_ids)), Event.id > after)
        .order_by(Event.id)
        .limit(limit)
    )
    return session.scalars(query).all()


def events_after_ids(
    session: Session, after: dict[int, tuple[str, ...]], limit: int
) -> Sequence[Event]:
    """Events, each experiment after its own id (`{id: experiments}`), in id order."""
    if not after:
        return []
    query = (
        select(Event)
        .where(or_(*(and_(Event.experiment_id.in_(i), Event.id > a) for a, i in after.items())))
        .order_by(Event.id)
        .limit(limit)
    )
    return session.scalars(query).all()


def progress_of(session: Session, experiment_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`{status, epoch, step, total}` of each experiment (missing ones are left out)."""
    query = select(
        Experiment.id,
        Experiment.status,
        Experiment.progress_epoch,
        Experiment.progress_step,
        Experiment.progress_total,
    ).where(Experiment.id.in_(list(experiment_ids)))
    return {
        row[0]: {"status": row[1], "epoch": row[2], "step": row[3], "total": row[4]}
        for row in session.execute(query)
    }


def example_hits(session: Session, experiment_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """experiment id -> its stored per-example hits (core/examples.py), for those that have
    them: the column is deferred, so a listing never loads it."""
    if not experiment_ids:
        return {}
    rows = session.execute(
        select(Experiment.id, Experiment.examples).where(
            Experiment.id.in_(list(experiment_ids)), Experiment.examples.is_not(None)
        )
    )
    return {exp_id: stored for exp_id, stored in rows if stored}
