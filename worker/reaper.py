"""Recovery: re-queue experiments whose worker died and re-send lost messages; the
scheduler's preemption pass (core.scheduling.preempt) and adaptive sweeps' rung decisions
(core.search.decide), on the same timer.

Every worker runs `reap_once` on a timer (see `start_reaper_thread`); running it in several
places at once is safe because each recovery is one fenced UPDATE.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from core import scheduling, search
from core.dispatch import resend_unsent, send_runs
from core.queue import pending_runs
from core.settings import Settings
from core.store import experiments as repo
from core.store import idempotency, lifecycle
from core.store.db import session_scope
from core.store.models import Status, utcnow

log = logging.getLogger("actlab.reaper")


def reap_once(settings: Settings) -> int:
    """One pass; returns how many experiments were recovered or re-sent."""
    url = settings.resolved_database_url
    resend: list[str] = []
    with session_scope(url) as session:
        for experiment_id in lifecycle.expired_leases(session, utcnow()):
            new = lifecycle.requeue_expired(
                session, experiment_id, max_attempts=settings.max_attempts
            )
            if new == Status.queued.value:
                resend.append(experiment_id)
            if new:
                log.warning("experiment %s: lease expired -> %s", experiment_id, new)
        before = utcnow() - timedelta(seconds=settings.queued_grace_seconds)
        stale = lifecycle.stale_queued(session, before)
        in_broker = _pending_runs(settings) if stale else set()
        for experiment_id in stale:
            # Long-queued behind a backlog is not lost: re-send only what has no message.
            # Either way the grace period starts again, so the broker is read once per period.
            repo.mark_enqueued(session, experiment_id)
            if experiment_id not in in_broker:
                resend.append(experiment_id)
        idempotency.purge_expired(session)
    for sweep_id in _waiting_sweeps(url):  # each in its own transaction
        with session_scope(url) as session:
            resend += search.decide(session, sweep_id)
    with session_scope(url) as session:
        asked = scheduling.preempt(session, settings)
    if asked:
        log.info("preemption asked of %s", ", ".join(asked))
    send_runs(settings, resend)  # after commit: the task re-reads the row
    return len(resend)


def _waiting_sweeps(url: str) -> list[str]:
    with session_scope(url) as session:
        return search.sweeps_waiting(session)


def _pending_runs(settings: Settings) -> set[str]:
    """Run messages in the broker; when it cannot be read, none (so every stale one is sent:
    a duplicate message is harmless, a lost one is not)."""
    try:
        return pending_runs(settings)
    except Exception:
        log.exception("could not read the broker's pending messages")
        return set()


def start_reaper_thread(settings: Settings, stop: threading.Event) -> threading.Thread:
    """Run `reap_once` every `reaper_interval_seconds` until `stop` is set."""

    def loop() -> None:
        while not stop.wait(settings.reaper_interval_seconds):
            try:
                reap_once(settings)
            except Exception:  # the database may be briefly away; try again next tick
                log.exception("reaper pass failed")

    thread = threading.Thread(target=loop, name="actlab-reaper", daemon=True)
    thread.start()
    return thread


# How often a worker looks for runs left unsent while the broker was down: a run submitted
# during an outage starts about this long after the broker answers again.
RESEND_INTERVAL_S = 1.0


def start_resend_thread(settings: Settings, stop: threading.Event) -> threading.Thread:
    """Send runs marked unsent (core/dispatch.py) as soon as the broker answers, until `stop`.

    Off the training thread: each pass is one indexed read of the queued rows, plus a PING
    (0.5 s at most, no retries) only when there are some."""

    def loop() -> None:
        while not stop.wait(RESEND_INTERVAL_S):
            try:
                resend_unsent(settings)
            except Exception:  # the database may be briefly away; try again next tick
                log.exception("re-sending unsent runs failed")

    thread = threading.Thread(target=loop, name="actlab-resend", daemon=True)
    thread.start()
    return thread
