"""`Idempotency-Key` on POSTs: a retried request returns the first response, creating nothing.

The key is reserved (inserted) at the start of the request, inside the request's transaction,
so two concurrent requests with one key serialise on the unique constraint: the second waits
for the first to commit, then replays its response.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.store.models import IdempotencyRecord, utcnow
from service.auth import PrincipalDep
from service.deps import SessionDep, SettingsDep
from service.errors import Conflict, InvalidSpec, ProblemError

HEADER = "Idempotency-Key"


class Replay(ProblemError):
    """Not an error: carries the stored response of an earlier request with the same key."""

    media_type = "application/json"

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__("replayed", headers={"Idempotent-Replayed": "true"})
        self.status = status
        self.body = body

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        return self.body


class Idempotency:
    """The request's key (or None) and where its response is saved."""

    def __init__(self, session: Session, record: IdempotencyRecord | None) -> None:
        self.session = session
        self.record = record

    def save(self, status: int, body: Any) -> None:
        if self.record is None:
            return
        self.record.status_code = status
        self.record.response = (
            json.loads(body.model_dump_json()) if hasattr(body, "model_dump_json") else body
        )
        self.session.flush()


async def request_digest(request: Request) -> str:
    """A hash of the path and the JSON body (read here, async; the rest runs in a thread)."""
    raw = await request.body()
    try:  # the same JSON document, however it is spaced or ordered, is the same request
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = raw
    return hashlib.sha256(request.url.path.encode() + b"\n" + canonical).hexdigest()


def _lookup(session: Session, owner: str, key: str) -> IdempotencyRecord | None:
    return session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.owner == owner, IdempotencyRecord.key == key
        )
    )


def get_idempotency(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    digest: Annotated[str, Depends(request_digest)],
) -> Idempotency:
    # Sync on purpose: FastAPI runs it in a thread, so waiting on a concurrent request's
    # row lock never blocks the event loop.
    key = request.headers.get(HEADER)
    if key is None:
        return Idempotency(session, None)
    if not 1 <= len(key) <= 200:
        raise InvalidSpec(f"{HEADER} must be 1 to 200 characters")
    owner = principal.owner_id or ""
    existing = _lookup(session, owner, key)
    if existing is not None and existing.expires_at <= utcnow():
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == existing.id))
        existing = None
    if existing is None:
        record = IdempotencyRecord(
            owner=owner,
            key=key,
            request_hash=digest,
            status_code=0,
            response={},
            expires_at=utcnow() + timedelta(seconds=settings.idempotency_ttl_seconds),
        )
        try:
            with session.begin_nested():
                session.add(record)
                session.flush()
            return Idempotency(session, record)
        except IntegrityError:  # a concurrent request with this key committed first
            existing = _lookup(session, owner, key)
            assert existing is not None
    if existing.request_hash != digest:
        raise InvalidSpec(f"{HEADER} {key!r} was already used with a different request body")
    if existing.status_code == 0:
        raise Conflict(f"a request with {HEADER} {key!r} is still in progress")
    raise Replay(existing.status_code, existing.response)


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
