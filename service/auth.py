"""API keys and the request's principal.

A key is `actlab_<prefix>_<secret>`; only the prefix and a SHA-256 hash of the whole key are
stored. Keys are random 256-bit secrets, so a fast hash is enough (no password stretching).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.store.models import ApiKey, new_id, utcnow
from service.deps import SessionDep, SettingsDep
from service.errors import NotFound, ProblemError

KEY_PREFIX = "actlab"


class Unauthorized(ProblemError):
    status, type, title = 401, "unauthorized", "Unauthorized"


@dataclass(frozen=True)
class Principal:
    """Who is calling: an owner name (None when auth is off) and whether they see everything."""

    owner_id: str | None
    admin: bool

    def can_see(self, owner_id: str | None) -> bool:
        return self.admin or self.owner_id is None or self.owner_id == owner_id

    @property
    def scope(self) -> str | None:
        """The owner to filter lists by; None means every owner."""
        return None if self.admin else self.owner_id


ANONYMOUS = Principal(owner_id=None, admin=True)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, *, owner: str, admin: bool = False) -> str:
    """Store a new key for `owner` and return it; it is never retrievable again."""
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    session.add(
        ApiKey(id=new_id("key"), owner=owner, prefix=prefix, key_hash=_hash(key), admin=admin)
    )
    session.flush()
    return key


def revoke_key(session: Session, *, prefix: str) -> None:
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None:
        raise NotFound(f"no key with prefix {prefix!r}")
    row.revoked_at = row.revoked_at or utcnow()


def authenticate(session: Session, key: str) -> Principal:
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != KEY_PREFIX:
        raise Unauthorized("malformed API key")
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if row is None or not hmac.compare_digest(row.key_hash, _hash(key)):
        raise Unauthorized("unknown API key")
    if row.revoked_at is not None:
        raise Unauthorized("API key revoked")
    return Principal(owner_id=row.owner, admin=row.admin)


def get_principal(request: Request, session: SessionDep, settings: SettingsDep) -> Principal:
    """The caller, from `Authorization: Bearer <key>`; everyone is admin when auth is off."""
    if not settings.auth_enabled:
        return ANONYMOUS
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized(
            "missing API key: send `Authorization: Bearer <key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return authenticate(session, key.strip())


PrincipalDep = Annotated[Principal, Depends(get_principal)]
