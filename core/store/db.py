"""Engines and sessions that behave alike on SQLite and Postgres."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
_AFTER_COMMIT = "actlab.after_commit"
log = logging.getLogger("actlab.store")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; busy_timeout makes a second writer wait
    # instead of failing with "database is locked"; SQLite ignores foreign keys by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    # Take the write lock at BEGIN: a deferred transaction that reads then writes can fail
    # with SQLITE_BUSY without waiting for busy_timeout when another writer got there first.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`, with SQLite set up for concurrent processes."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling is switched off so BEGIN IMMEDIATE is ours.
        event.listen(
            engine,
            "connect",
            lambda dbapi_conn, _rec: setattr(dbapi_conn, "isolation_level", None),
        )
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    # 20 connections: more than the API's DatabaseGate admits at once (16), so an admitted
    # request never waits for one; a worker process uses two or three.
    kwargs = {"pool_size": 10, "max_overflow": 10, **kwargs}
    return create_engine(url, pool_pre_ping=True, **kwargs)


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One engine per URL per process."""
    return make_engine(url)


def get_sessionmaker(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


def after_commit(session: Session, action: Callable[[], object]) -> None:
    """Run `action` once `session`'s unit of work has committed (e.g. send a task).

    A message sent before the commit could reach a worker before its row exists; one sent
    from a transaction that then rolls back would name a row that never will.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """The one unit of work (a request's, a worker step's): commit on success, roll back on
    error, and after a commit run the `after_commit` actions."""
    session = get_sessionmaker(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        actions = session.info.pop(_AFTER_COMMIT, [])
        session.close()
    for action in actions:
        try:
            action()
        except Exception:  # the row is committed; the reaper re-sends lost messages
            log.exception("after-commit action failed")
