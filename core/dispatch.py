"""Run messages, with the database as the queue of record.

A queued experiment is its row; the broker's message only wakes a worker for it. When a
message cannot be sent (the broker is down or restarting), the submit still succeeds: the
row is marked unsent (`enqueued_at` NULL) and `resend_unsent` sends it as soon as the broker
answers again. Every worker calls that each second (worker/reaper.py), so a run submitted
during an outage starts within seconds of the broker's return, not after the reaper's
`queued_grace_seconds`. A duplicate message is harmless (a worker claims a row once); a
lost one is not, hence this.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from core.queue import broker_client, send_run
from core.settings import Settings
from core.store import experiments as repo
from core.store import lifecycle
from core.store.db import session_scope

log = logging.getLogger("actlab.dispatch")


def send_runs(settings: Settings, ids: Sequence[str]) -> list[str]:
    """Send each run's message (after its row committed); returns those left unsent.

    At the first failure the rest are not tried (the broker is away) and all of them are
    marked unsent in the database, for `resend_unsent`."""
    for index, experiment_id in enumerate(ids):
        try:
            send_run(settings, experiment_id)
        except Exception as exc:
            unsent = list(ids[index:])
            log.warning(
                "broker unreachable (%s): %d run(s) kept queued in the database, sent when "
                "it answers again",
                exc,
                len(unsent),
            )
            _mark_unsent(settings, unsent)
            return unsent
    return []


def _mark_unsent(settings: Settings, ids: list[str]) -> None:
    try:
        with session_scope(settings.resolved_database_url) as session:
            lifecycle.mark_unsent(session, ids)
    except Exception:  # the database too: the reaper re-sends after queued_grace_seconds
        log.exception("could not mark %d run(s) unsent", len(ids))


def resend_unsent(settings: Settings) -> list[str]:
    """Send the runs marked unsent, if the broker answers; returns those sent."""
    url = settings.resolved_database_url
    with session_scope(url) as session:
        ids = list(lifecycle.unsent(session))
    if not ids or not broker_answers(settings):
        return []
    with session_scope(url) as session:
        for experiment_id in ids:
            repo.mark_enqueued(session, experiment_id)
    left = send_runs(settings, ids)
    sent = [i for i in ids if i not in left]
    if sent:
        log.info("broker back: sent %d run(s) queued while it was away", len(sent))
    return sent


def broker_answers(settings: Settings, timeout_s: float = 0.5) -> bool:
    """A PING answered within `timeout_s`, without retries."""
    client = broker_client(settings, timeout=timeout_s, retry=False)
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()
