"""The API<->worker contract on an experiment row: claim an attempt, renew its lease, end it,
and recover attempts whose worker was lost. Every write is fenced by the lease token.

The API creates, cancels and retries (core.store.experiments); a worker claims, renews
and finishes here; the reaper recovers expired leases and re-sends stale queued runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from core.store import publish
from core.store.experiments import add_event
from core.store.models import TERMINAL, Attempt, Experiment, Status, utcnow


class LeaseLost(Exception):
    """The caller's fencing token is stale: another attempt owns the experiment now."""


@dataclass(frozen=True)
class Lease:
    """What a renewal read back: the experiment's status, and whether the scheduler asked
    this attempt to give its worker up (core/scheduling: preemption)."""

    status: str
    preempt: bool


@dataclass(frozen=True)
class Claim:
    experiment_id: str
    token: int
    attempt: int
    spec: dict[str, Any]
    checkpoint_path: str | None
    fork: dict[str, Any] | None = None  # a fork's start (models.Experiment.fork)
    rung_step: int | None = None  # an adaptive sweep's member pauses here (core/search.py)


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
            preempt_requested_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    row = session.execute(
        select(
            Experiment.lease_token,
            Experiment.attempts,
            Experiment.spec,
            Experiment.checkpoint_path,
            Experiment.owner_id,
            Experiment.fork,
            Experiment.rung_step,
        ).where(Experiment.id == experiment_id)
    ).one()
    # The fair-share ledger: this attempt's worker time, closed when the attempt ends.
    session.add(
        Attempt(
            experiment_id=experiment_id,
            owner=row.owner_id or "",
            worker=worker,
            token=row.lease_token,
            share=1.0,
            started_at=now,
        )
    )
    message = f"attempt {row.attempts} on {worker}"
    add_event(
        session,
        experiment_id,
        "status",
        message,
        status=Status.running.value,
        data={"attempt": row.attempts, "worker": worker},
    )
    return Claim(
        experiment_id,
        row.lease_token,
        row.attempts,
        row.spec,
        row.checkpoint_path,
        row.fork,
        row.rung_step,
    )


def renew(session: Session, claim: Claim, *, lease_seconds: float, **values: Any) -> Lease:
    """Extend the lease (and write `values`) under the fencing token; returns the status and
    whether a preemption was asked for.

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
            Experiment.preempt_requested_at,
        ).where(Experiment.id == claim.experiment_id)
    ).one()
    if any(key.startswith("progress_") for key in values):
        progress = {"status": row[0], "epoch": row[1], "step": row[2], "total": row[3]}
        publish.note_progress(session, claim.experiment_id, progress)
    return Lease(status=row[0], preempt=row[4] is not None)


def finish(
    session: Session,
    claim: Claim,
    *,
    status: Status,
    reason: str | None = None,
    message: str | None = None,
    summary: dict[str, Any] | None = None,
    examples: dict[str, Any] | None = None,
    progress_at: tuple[int, int] | None = None,
    event: bool = True,
) -> None:
    """End the attempt in a terminal status (or back to queued), fenced by the token.

    `progress_at` (epoch, step): the checkpoint an interrupted attempt left, which a retry
    resumes from, so that progress and the retry's "resumed at step" agree.

    `event=False` leaves out the status event: a database too full for one more row can
    often still update the row in place, and the lease is then handed back at once.

    Back to queued (a preemption, a worker's shutdown) only from running: a user who
    cancelled meanwhile (cancelling) gets cancelled, not a re-queued run.
    """
    now = utcnow()
    if status in (Status.queued, Status.paused):
        current = session.scalar(
            select(Experiment.status).where(
                Experiment.id == claim.experiment_id, Experiment.lease_token == claim.token
            )
        )
        if current == Status.cancelling.value:
            status, reason, message = Status.cancelled, "cancelled", "cancelled by the user"
    values: dict[str, Any] = {
        "status": status.value,
        "status_reason": reason,
        "status_message": message,
        "lease_expires_at": None,
        "lease_owner": None,
        "preempt_requested_at": None,
        **({"finished_at": now} if status in TERMINAL else {}),
        **({"enqueued_at": now} if status == Status.queued else {}),
        **({"summary": summary} if summary is not None else {}),
        **({"examples": examples} if examples is not None else {}),
    }
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
    close_attempt(session, claim.experiment_id, claim.token, now)
    if not event:
        return
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
    outcome = _recovery(row, max_attempts)
    if outcome is None:
        return None
    new, reason, message = outcome
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
    close_attempt(session, experiment_id, row.lease_token, now)
    add_event(
        session,
        experiment_id,
        "status",
        message,
        status=new.value,
        data={"reason": reason, "attempts": row.attempts},
    )
    return new.value


def close_attempt(session: Session, experiment_id: str, token: int, when: datetime) -> None:
    """End the ledger's record of the attempt that held `token` (its worker time stops)."""
    session.execute(
        update(Attempt)
        .where(
            Attempt.experiment_id == experiment_id,
            Attempt.token == token,
            Attempt.ended_at.is_(None),
        )
        .values(ended_at=when)
        .execution_options(synchronize_session=False)
    )


def _recovery(row: Experiment, max_attempts: int) -> tuple[Status, str, str] | None:
    """Where an experiment whose worker was lost goes: (status, reason, message)."""
    if row.status == Status.cancelling.value:
        return Status.cancelled, "cancelled", "cancelled (worker lost)"
    if row.attempts - row.attempts_at_retry >= max_attempts:
        used = f"worker lost; {row.attempts} attempts of {max_attempts} used"
        return Status.failed, "worker_lost", used
    if row.status == Status.running.value:
        return Status.queued, "requeued", "lease expired; re-queued"
    return None


def stale_queued(session: Session, before: datetime) -> Sequence[str]:
    """Queued experiments last sent before `before`: their message may have been lost."""
    query = select(Experiment.id).where(
        Experiment.status == Status.queued.value,
        or_(Experiment.enqueued_at.is_(None), Experiment.enqueued_at < before),
    )
    return session.scalars(query).all()


def unsent(session: Session) -> Sequence[str]:
    """Queued experiments whose message could not be sent (the broker was down): those
    `mark_unsent` left without `enqueued_at` (an indexed read of the queued rows)."""
    query = select(Experiment.id).where(
        Experiment.status == Status.queued.value, Experiment.enqueued_at.is_(None)
    )
    return session.scalars(query.order_by(Experiment.id)).all()


def mark_unsent(session: Session, ids: Sequence[str]) -> None:
    """Their message was not sent: `unsent` finds them (and the reaper's `stale_queued`)."""
    session.execute(
        update(Experiment)
        .where(Experiment.id.in_(list(ids)), Experiment.status == Status.queued.value)
        .values(enqueued_at=None)
        .execution_options(synchronize_session=False)
    )


def _status_text(status: Status, reason: str | None, message: str | None) -> str:
    """`failed (diverged): loss is nan`; a reason that repeats the status is left out."""
    if not reason:
        return status.value
    if reason == status.value:
        return message or status.value
    return f"{status.value} ({reason}): {message or ''}".strip().removesuffix(":")
