"""Idempotency records outlive their request by `idempotency_ttl_seconds`, then go."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from core.store.models import IdempotencyRecord, utcnow


def purge_expired(session: Session) -> int:
    """Delete every expired record (the reaper calls this); returns how many."""
    result = session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
