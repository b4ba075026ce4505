"""Owners' scheduling knobs: weight (fair share), most running at once, highest priority."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.store.models import Owner

DEFAULT_WEIGHT = 1.0
DEFAULT_MAX_PRIORITY = 0


@dataclass(frozen=True)
class Knobs:
    owner: str
    weight: float = DEFAULT_WEIGHT
    max_running: int | None = None  # None: no cap
    max_priority: int = DEFAULT_MAX_PRIORITY


def knobs(session: Session, owner: str) -> Knobs:
    """The owner's knobs (the defaults when an admin never set them)."""
    row = session.get(Owner, owner)
    if row is None:
        return Knobs(owner)
    return Knobs(owner, row.weight, row.max_running, row.max_priority)


UNSET = object()  # set_knobs: leave max_running as it is


def set_knobs(
    session: Session,
    owner: str,
    *,
    weight: float | None = None,
    max_running: int | object | None = UNSET,
    max_priority: int | None = None,
) -> Knobs:
    """Change the knobs given (the others keep their values); returns them all."""
    row = session.get(Owner, owner)
    if row is None:
        row = Owner(owner=owner, weight=DEFAULT_WEIGHT, max_priority=DEFAULT_MAX_PRIORITY)
        session.add(row)
    if weight is not None:
        row.weight = weight
    if max_running is not UNSET:
        row.max_running = max_running  # type: ignore[assignment]
    if max_priority is not None:
        row.max_priority = max_priority
    session.flush()
    return knobs(session, owner)
