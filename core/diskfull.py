"""Whether an error is a full disk, however deep it sits in the exception chain.

A full disk rarely surfaces as itself: torch's zip writer turns the ENOSPC of a checkpoint
write into `RuntimeError: [enforce fail at inline_container.cc] unexpected pos`, with the
OSError only as its context, and SQLAlchemy wraps the database's refusal in an
OperationalError. The worker and the API both name the condition (`disk_full`, a 507), so
both ask here. No database driver is imported: the engine, which uses this, has none.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

# ENOSPC: the filesystem is full; EDQUOT: the user's quota on it is.
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# Postgres's SQLSTATE disk_full (class 53, insufficient resources).
POSTGRES_DISK_FULL = "53100"
# SQLite's SQLITE_FULL, as sqlite3 words it (no error code before Python 3.11's attributes).
SQLITE_FULL = "database or disk is full"


def chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then its causes and contexts, each once (a chain may loop)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)  # SQLAlchemy's DBAPIError keeps the driver's
        for nxt in (orig, current.__cause__, current.__context__):
            if isinstance(nxt, BaseException):
                stack.append(nxt)


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` (or anything that led to it) says that no space is left."""
    return any(_says_full(e) for e in chain(exc))


def _says_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
        return True
    if getattr(exc, "sqlstate", None) == POSTGRES_DISK_FULL:  # psycopg 3
        return True
    if getattr(exc, "pgcode", None) == POSTGRES_DISK_FULL:  # psycopg 2
        return True
    return SQLITE_FULL in str(exc)
