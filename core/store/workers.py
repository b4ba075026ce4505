"""The worker registry: each worker process says what it has (its device and memory) and
renews `seen_at` while it lives; the scheduler reads the live ones (core/scheduling)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from core.store.models import Worker, utcnow

# A worker not seen for this many of its heartbeats' leases is forgotten.
_FORGET_AFTER = timedelta(days=1)


def seen(session: Session, *, name: str, device: str, memory_bytes: int) -> None:
    """Register the worker, or renew its `seen_at`."""
    now = utcnow()
    row = session.get(Worker, name)
    if row is None:
        session.add(
            Worker(name=name, device=device, memory_bytes=memory_bytes, started_at=now, seen_at=now)
        )
    else:
        row.device, row.memory_bytes, row.seen_at = device, memory_bytes, now
    session.execute(delete(Worker).where(Worker.seen_at < now - _FORGET_AFTER))


def gone(session: Session, name: str) -> None:
    """The worker stops: it no longer counts as live."""
    session.execute(delete(Worker).where(Worker.name == name))
