"""Experiment rows: creation, queries, and the worker's fenced lifecycle writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from service.spec import ExperimentSpec
from service.store import live, pages
from service.store.models import (
    TERMINAL,
    Event,
    Experiment,
    ExperimentTag,
    Status,
    new_id,
    utcnow,
)


class LeaseLost(Exception):
    """The caller's fencing token is stale: another attempt owns the experiment now."""


@dataclass(frozen=True)
class Claim:
    experiment_id: str
    token: int
    attempt: int
    spec: dict[str, Any]
    checkpoint_path: str | None


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
) -> Experiment:
    """Insert a queued experiment and its first event; the caller commits."""
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
    )
    session.add(experiment)
    session.flush()
    session.add_all(ExperimentTag(experiment_id=experiment.id, tag=t) for t in set(spec.tags))
    add_event(session, experiment.id, "status", "queued", status=Status.queued.value)
    session.flush()
    return experiment


def get(session: Session, experiment_id: str) -> Experiment | None:
    return session.get(Experiment, experiment_id)


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
    if tag:
        query = query.join(ExperimentTag).where(ExperimentTag.tag == tag)
    return pages.newest_first(session, query, limit=limit, cursor=cursor)


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


def claim(
    session: Session, experiment_id: str, *, worker: str, lease_seconds: float
) -> Claim | None:
    """Take the experiment if it is queued or its lease expired; None if someone else has it.

    One UPDATE decides: of two workers racing for the same row, exactly one matches.
    """
    now = utcnow()
    claimable = or_(
        Experiment.status == Status.queued.value,
        and_(Experiment.status == Status.running.value, Experiment.lease_expires_at < now),
    )
    result = session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id, claimable)
        .values(
            status=Status.running.value,
            lease_token=Experiment.lease_token + 1,
            lease_owner=worker,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=Experiment.attempts + 1,
            started_at=now,
            status_reason=None,
            status_message=None,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    row = session.execute(
        select(
            Experiment.lease_token, Experiment.attempts, Experiment.spec, Experiment.checkpoint_path
        ).where(Experiment.id == experiment_id)
    ).one()
    message = f"attempt {row.attempts} on {worker}"
    add_event(
        session,
        experiment_id,
        "status",
        message,
        status=Status.running.value,
        data={"attempt": row.attempts, "worker": worker},
    )
    return Claim(experiment_id, row.lease_token, row.attempts, row.spec, row.checkpoint_path)


def renew(session: Session, claim: Claim, *, lease_seconds: float, **values: Any) -> str:
    """Extend the lease (and write `values`) under the fencing token; returns the status.

    Raises LeaseLost when the token is stale, so a duplicate stops writing at once.
    """
    expires = utcnow() + timedelta(seconds=lease_seconds)
    result = session.execute(
        update(Experiment)
        .where(
            Experiment.id == claim.experiment_id,
            Experiment.lease_token == claim.token,
            Experiment.status.in_([Status.running.value, Status.cancelling.value]),
        )
        .values(lease_expires_at=expires, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"experiment {claim.experiment_id}: token {claim.token} is stale")
    row = session.execute(
        select(
            Experiment.status,
            Experiment.progress_epoch,
            Experiment.progress_step,
            Experiment.progress_total,
        ).where(Experiment.id == claim.experiment_id)
    ).one()
    if any(key.startswith("progress_") for key in values):
        progress = {"status": row[0], "epoch": row[1], "step": row[2], "total": row[3]}
        live.note_progress(session, claim.experiment_id, progress)
    status: str = row[0]
    return status


def finish(
    session: Session,
    claim: Claim,
    *,
    status: Status,
    reason: str | None = None,
    message: str | None = None,
    summary: dict[str, Any] | None = None,
    progress_at: tuple[int, int] | None = None,
) -> None:
    """End the attempt in a terminal status (or back to queued), fenced by the token.

    `progress_at` (epoch, step): the checkpoint an interrupted attempt left, which a retry
    resumes from, so that progress and the retry's "resumed at step" agree.
    """
    now = utcnow()
    values: dict[str, Any] = {
        "status": status.value,
        "status_reason": reason,
        "status_message": message,
        "lease_expires_at": None,
        "lease_owner": None,
    }
    if status in TERMINAL:
        values["finished_at"] = now
    if summary is not None:
        values["summary"] = summary
    if progress_at is not None:
        values["progress_epoch"], values["progress_step"] = progress_at
    result = session.execute(
        update(Experiment)
        .where(Experiment.id == claim.experiment_id, Experiment.lease_token == claim.token)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"experiment {claim.experiment_id}: token {claim.token} is stale")
    text = _status_text(status, reason, message)
    add_event(
        session,
        claim.experiment_id,
        "status",
        text,
        status=status.value,
        data={"reason": reason} if reason else None,
    )


def expired_leases(session: Session, now: datetime) -> Sequence[str]:
    query = select(Experiment.id).where(
        Experiment.status.in_([Status.running.value, Status.cancelling.value]),
        Experiment.lease_expires_at < now,
    )
    return session.scalars(query).all()


def requeue_expired(session: Session, experiment_id: str, *, max_attempts: int) -> str | None:
    """Recover one experiment whose lease expired; returns its new status, or None if it moved.

    The token is bumped, so the presumed-dead worker, if it is only slow, can no longer write.
    """
    row = session.get(Experiment, experiment_id)
    now = utcnow()
    if row is None or row.lease_expires_at is None or row.lease_expires_at >= now:
        return None
    if row.status == Status.cancelling.value:
        new, reason, message = Status.cancelled, "cancelled", "cancelled (worker lost)"
    elif row.attempts - row.attempts_at_retry >= max_attempts:
        new, reason = Status.failed, "worker_lost"
        message = f"worker lost; {row.attempts} attempts of {max_attempts} used"
    elif row.status == Status.running.value:
        new, reason, message = Status.queued, "requeued", "lease expired; re-queued"
    else:
        return None
    result = session.execute(
        update(Experiment)
        .where(
            Experiment.id == experiment_id,
            Experiment.lease_token == row.lease_token,
            Experiment.status == row.status,
        )
        .values(
            status=new.value,
            status_reason=reason if new != Status.queued else None,
            status_message=message,
            lease_token=Experiment.lease_token + 1,
            lease_owner=None,
            lease_expires_at=None,
            finished_at=now if new in TERMINAL else None,
            enqueued_at=now if new == Status.queued else row.enqueued_at,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    add_event(
        session,
        experiment_id,
        "status",
        message,
        status=new.value,
        data={"reason": reason, "attempts": row.attempts},
    )
    return new.value


def stale_queued(session: Session, before: datetime) -> Sequence[str]:
    """Queued experiments last sent before `before`: their message may have been lost."""
    query = select(Experiment.id).where(
        Experiment.status == Status.queued.value,
        or_(Experiment.enqueued_at.is_(None), Experiment.enqueued_at < before),
    )
    return session.scalars(query).all()


def request_cancel(session: Session, experiment: Experiment) -> bool:
    """Queued -> cancelled at once; running -> cancelling (the worker stops within seconds).

    Returns False when the experiment already ended. Each transition is a guarded UPDATE,
    so a worker that claims the row at the same moment cannot be overwritten silently.
    """
    for old, new in ((Status.queued, Status.cancelled), (Status.running, Status.cancelling)):
        values: dict[str, Any] = {"status": new.value}
        if new == Status.cancelled:
            values.update(
                finished_at=utcnow(),
                status_reason="cancelled",
                status_message="cancelled before it started",
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
    query = (
        select(Event)
        .where(Event.experiment_id == experiment_id, Event.id > after)
        .order_by(Event.id)
        .limit(limit)
    )
    return session.scalars(query).all()


def _status_text(status: Status, reason: str | None, message: str | None) -> str:
    """`failed (diverged): loss is nan`; a reason that repeats the status is left out."""
    if not reason:
        return status.value
    if reason == status.value:
        return message or status.value
    return f"{status.value} ({reason}): {message or ''}".strip().removesuffix(":")


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
