"""What a worker can run: the job kinds, each with its claim, its run and its finish.

A queue message wakes a worker; it does not choose the work. The worker asks the scheduler
(core.scheduling) for the unit the policy gives it now, and the first kind in `KINDS` that
`applies` to that unit's head claims what it trains (in the same transaction, under the
claim lock: the experiment, or every claimable member of its pack) and runs it; each claimed
experiment ends through `attempt.finish`, the one place an outcome becomes a status. A new
kind (a fork, a resumed promotion) is one module with `applies`, `claim` and `run`, and one
entry here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import scheduling
from core.dispatch import send_runs
from core.settings import Settings
from core.store.db import session_scope
from core.store.lifecycle import Claim
from core.store.models import Experiment, Status
from worker.jobs import pack, single
from worker.resources import WORKER

log = logging.getLogger("actlab.worker")


@dataclass(frozen=True)
class JobKind:
    """One kind of work: which experiments it takes, how it claims and how it runs them."""

    name: str
    applies: Callable[[Session, str], bool]
    claim: Callable[[Session, str, Settings], list[Claim]]
    run: Callable[[list[Claim], Settings], dict[str, str]]  # final status by experiment id


KINDS: tuple[JobKind, ...] = (
    JobKind("pack", pack.applies, pack.claim, pack.run),
    JobKind("single", single.applies, single.claim, single.run),  # the rest: last
)


# A claim that loses a race with the API (a cancel between the pick and the claim) picks
# again, at most this many times.
_PICKS = 8


def run(experiment_id: str, settings: Settings) -> str:
    """Claim what the scheduler gives this worker now and run it; the status the message's
    experiment ended in if it was the one claimed, else the kind's name (or 'skipped').

    `experiment_id` is the message's: a hint for the log only.
    """
    kind, claims = claim_next(settings)
    if kind is None or not claims:
        log.info(
            "woken by %s: nothing this worker may claim now",
            experiment_id,
            extra={"experiment_id": experiment_id},
        )
        return "skipped"
    try:
        ended = kind.run(claims, settings)
    finally:
        wake_if_queued(settings)
    return ended.get(experiment_id, kind.name)


def claim_next(settings: Settings) -> tuple[JobKind | None, list[Claim]]:
    """The policy's unit for this worker, claimed by its kind in one transaction."""
    tried: list[str] = []
    with session_scope(settings.resolved_database_url) as session:
        scheduling.lock_claims(session)
        for _ in range(_PICKS):
            unit = scheduling.next_unit(
                session, settings, memory_bytes=WORKER.memory_bytes, exclude=tried
            )
            if unit is None:
                return None, []
            head = unit.ids[0]
            kind = next(k for k in KINDS if k.applies(session, head))
            claims = kind.claim(session, head, settings)
            if claims:
                return kind, claims
            tried.append(head)
    return None, []


def wake_if_queued(settings: Settings) -> None:
    """A run ended and freed this worker (and its owner's slot): wake a worker for the
    queued work that was waiting for either, whose own message may have been spent."""
    try:
        with session_scope(settings.resolved_database_url) as session:
            queued = session.scalar(
                select(Experiment.id).where(Experiment.status == Status.queued.value).limit(1)
            )
        if queued is not None:
            send_runs(settings, [queued])
    except Exception:  # the reaper re-sends what stays queued
        log.exception("could not send a wake-up")
