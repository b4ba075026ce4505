"""Owners' scheduling knobs as the API applies them: the priority a caller may ask for, and
the immediate preemption pass after work of a raised priority is queued."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from core import scheduling
from core.settings import Settings
from core.store import owners as owners_repo
from core.store.db import session_scope
from service.auth import Principal

log = logging.getLogger("actlab.api")

# Admins (and everyone when auth is off: one researcher's own box) may use any priority.
ADMIN_MAX_PRIORITY = 100


def max_priority(session: Session, principal: Principal) -> int:
    """The highest priority the caller's key may ask for."""
    if principal.admin or principal.owner_id is None:
        return ADMIN_MAX_PRIORITY
    return owners_repo.knobs(session, principal.owner_id).max_priority


def preempt_now(settings: Settings) -> None:
    """Decide preemptions at once (the workers' reaper pass also does, on its timer), so an
    urgent run waits one heartbeat and a checkpoint, not a reaper interval as well."""
    try:
        with session_scope(settings.resolved_database_url) as session:
            scheduling.preempt(session, settings)
    except Exception:  # the workers' next reaper pass decides instead
        log.exception("preemption pass failed")
