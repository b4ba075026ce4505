"""What a worker can run: the job kinds, each with its claim, its run and its finish.

A queue message carries an experiment id. The first kind in `KINDS` that `applies` to that
experiment claims what it trains (in one transaction: the experiment, or every claimable
member of its pack) and runs it; each claimed experiment ends through `attempt.finish`, the
one place an outcome becomes a status. A new kind (a fork, a resumed promotion) is one
module with `applies`, `claim` and `run`, and one entry here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.settings import Settings
from core.store.db import session_scope
from core.store.lifecycle import Claim
from worker.jobs import pack, single

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


def run(experiment_id: str, settings: Settings) -> str:
    """Claim and run `experiment_id` by its kind; the status it ended in (or 'skipped').

    A member of a pack claims every claimable member with it and trains them packed.
    """
    with session_scope(settings.resolved_database_url) as session:
        kind = next(k for k in KINDS if k.applies(session, experiment_id))
        claims = kind.claim(session, experiment_id, settings)
    if not claims:
        log.info(
            "experiment %s not claimable (done, cancelled, or owned); skipping",
            experiment_id,
            extra={"experiment_id": experiment_id},
        )
        return "skipped"
    ended = kind.run(claims, settings)
    return ended.get(experiment_id, kind.name)
