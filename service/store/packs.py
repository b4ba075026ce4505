"""Packs: experiments a worker claims and trains together, in one transaction.

Fencing stays per member: each member's claim bumps its own token, and every later write
(progress, metrics, checkpoints, the final status) is fenced by that member's token.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.experiments import Claim, claim
from service.store.models import Experiment


def pack_of(session: Session, experiment_id: str) -> str | None:
    """The experiment's pack id, or None when it trains alone."""
    query = select(Experiment.pack_id).where(Experiment.id == experiment_id)
    return session.execute(query).scalar_one_or_none()


def claim_pack(session: Session, pack_id: str, *, worker: str, lease_seconds: float) -> list[Claim]:
    """Claim every claimable member of the pack (queued, or running with an expired lease).

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
    claims = [claim(session, i, worker=worker, lease_seconds=lease_seconds) for i in ids]
    return [c for c in claims if c is not None]
