"""Annotated dependencies: settings, and the request's session, which owns the transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from service.settings import Settings
from service.store.db import get_sessionmaker

log = logging.getLogger("actlab.api")


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run `action` once the request's transaction has committed (e.g. enqueue a task)."""
    session.info.setdefault("after_commit", []).append(action)


def get_session(settings: SettingsDep) -> Iterator[Session]:
    """Commit when the endpoint returns, roll back when it raises; then run after-commit hooks.

    `scope="function"` runs this exit code when the endpoint returns, before the response
    is sent, so a client that gets 201 can read what it created. (The default scope runs it
    after the response has gone out: a GET right after a 201 could then find nothing.)
    """
    session = get_sessionmaker(settings.resolved_database_url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    for action in session.info.pop("after_commit", []):
        try:
            action()
        except Exception:  # the row is committed; the reaper re-sends lost messages
            log.exception("after-commit action failed")


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
