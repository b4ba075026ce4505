"""Packs: how a sweep's experiments are grouped into packs (the packable set is
core.spec.packing), and a worker claiming a pack's members together, in one transaction.

The grouping lives here, not in the API, because packs are formed in two places: when a
sweep is created (or seeds are added), and when an Optuna search's worker or reaper asks
the next trials (core/trials.py).

Fencing stays per member: each member's claim bumps its own token, and every later write
(progress, metrics, checkpoints, the final status) is fenced by that member's token.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.spec.packing import pack_key
from core.store.lifecycle import Claim, claim
from core.store.models import Attempt, Experiment, Status, new_id, utcnow


def groups(rows: Sequence[Experiment], *, max_members: int) -> list[list[Experiment]]:
    """Packs of at most `max_members` experiments that may train together, in sweep order;
    experiments that cannot pack, or that would be alone in a pack, are left out."""
    by_key: dict[str, list[Experiment]] = defaultdict(list)
    for row in rows:
        key = pack_key(row.spec)
        if key is not None:
            if row.fork:  # forks pack when they start at one step on one noise clock
                key += f"|fork@{row.fork['at_step']}:{row.fork['noise_clock']}"
            by_key[key].append(row)
    out = []
    for members in by_key.values():
        for start in range(0, len(members), max_members):
            chunk = members[start : start + max_members]
            if len(chunk) > 1:
                out.append(chunk)
    return out


def assign_packs(session: Session, rows: Sequence[Experiment], *, max_members: int) -> None:
    """Give each pack of `rows` its id; the caller commits."""
    for chunk in groups(rows, max_members=max_members):
        pack_id = new_id("pack")
        for row in chunk:
            row.pack_id = pack_id
    session.flush()


# A member in one of these states with a lease not yet expired is held by a worker.
_HELD = (Status.running.value, Status.cancelling.value)


def pack_of(session: Session, experiment_id: str) -> str | None:
    """The experiment's pack id, or None when it trains alone."""
    query = select(Experiment.pack_id).where(Experiment.id == experiment_id)
    return session.execute(query).scalar_one_or_none()


def claim_pack(session: Session, pack_id: str, *, worker: str, lease_seconds: float) -> list[Claim]:
    """Claim every claimable member of the pack (queued, or running with an expired lease),
    or none while any member is still held under a live lease.

    All or nothing: after a worker dies, its members' leases expire one by one (each was
    last renewed at a slightly different moment), and the reaper re-queues them in
    different passes. Claiming the members already re-queued would split the pack into
    packs of other sizes, or a member trained alone, whose curves are no longer the packed
    run's. So a pack is claimed only once no member is held; the reaper re-queues the
    last one and its message claims them all.

    On Postgres the members' rows are locked first, in id order: of two workers racing for a
    pack, the second waits, then finds nothing left to claim, so no pack is ever split.
    (SQLite's BEGIN IMMEDIATE already serialises the whole transaction.)
    """
    ids = session.scalars(
        select(Experiment.id)
        .where(Experiment.pack_id == pack_id)
        .order_by(Experiment.id)
        .with_for_update()
    ).all()
    held = session.scalars(
        select(Experiment.id).where(
            Experiment.pack_id == pack_id,
            Experiment.status.in_(_HELD),
            Experiment.lease_expires_at >= utcnow(),
        )
    ).first()
    if held is not None:
        return []
    claims = [claim(session, i, worker=worker, lease_seconds=lease_seconds) for i in ids]
    taken = [c for c in claims if c is not None]
    # The members share one worker: each is charged its part of the worker's time.
    for c in taken:
        session.execute(
            update(Attempt)
            .where(Attempt.experiment_id == c.experiment_id, Attempt.token == c.token)
            .values(share=1.0 / len(taken))
            .execution_options(synchronize_session=False)
        )
    return taken
