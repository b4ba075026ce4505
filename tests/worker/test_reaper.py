"""The reaper: expired leases are re-queued (then failed as worker_lost), lost sends re-sent."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from sqlalchemy import update

from core.queue import pending_runs, send_run
from core.settings import Settings
from core.spec import ExperimentSpec
from core.store import experiments as repo
from core.store import lifecycle
from core.store.db import session_scope
from core.store.models import Experiment, utcnow
from tests.support import canonical_spec
from worker.reaper import reap_once


def _queue_length(settings: Settings) -> int:
    url = settings.resolved_broker_url
    client = (
        redis.Redis(unix_socket_path=url.removeprefix("redis+socket://"))
        if url.startswith("redis+socket://")
        else redis.Redis.from_url(url)
    )
    return int(client.llen(settings.queue))  # type: ignore[arg-type]


def _create(settings: Settings) -> str:
    with session_scope(settings.resolved_database_url) as session:
        row = repo.create(session, spec=ExperimentSpec.model_validate(canonical_spec()))
        repo.mark_enqueued(session, row.id)
        return row.id


def _claim_and_expire(settings: Settings, experiment_id: str) -> lifecycle.Claim:
    url = settings.resolved_database_url
    with session_scope(url) as session:
        claim = lifecycle.claim(session, experiment_id, worker="dead", lease_seconds=60)
        assert claim is not None
        session.execute(update(Experiment).values(lease_expires_at=utcnow() - timedelta(1)))
    return claim


def test_expired_lease_is_requeued_then_fails_as_worker_lost(settings: Settings) -> None:
    settings = settings.model_copy(update={"max_attempts": 2})
    url = settings.resolved_database_url
    experiment_id = _create(settings)
    first = _claim_and_expire(settings, experiment_id)
    assert reap_once(settings) == 1
    assert _queue_length(settings) == 1  # sent again after the commit
    with session_scope(url) as session:
        row = session.get(Experiment, experiment_id)
        assert row is not None and row.status == "queued" and row.attempts == 1
        # The presumed-dead worker's token no longer writes.
        with pytest.raises(lifecycle.LeaseLost):
            lifecycle.renew(session, first, lease_seconds=60)
    _claim_and_expire(settings, experiment_id)
    reap_once(settings)
    with session_scope(url) as session:
        row = session.get(Experiment, experiment_id)
        assert row is not None and row.status == "failed"
        assert row.status_reason == "worker_lost" and row.attempts == 2
        statuses = [e.status for e in repo.events_after(session, experiment_id, 0, 100)]
    assert statuses == ["queued", "running", "queued", "running", "failed"]


def test_cancelling_with_a_dead_worker_ends_cancelled(settings: Settings) -> None:
    experiment_id = _create(settings)
    _claim_and_expire(settings, experiment_id)
    with session_scope(settings.resolved_database_url) as session:
        session.execute(update(Experiment).values(status="cancelling"))
    reap_once(settings)
    with session_scope(settings.resolved_database_url) as session:
        row = session.get(Experiment, experiment_id)
        assert row is not None and row.status == "cancelled"


def test_queued_experiment_whose_message_was_lost_is_sent_again(settings: Settings) -> None:
    settings = settings.model_copy(update={"queued_grace_seconds": 1})
    experiment_id = _create(settings)
    assert reap_once(settings) == 0  # just sent: not stale yet
    with session_scope(settings.resolved_database_url) as session:
        session.execute(update(Experiment).values(enqueued_at=utcnow() - timedelta(seconds=5)))
    assert reap_once(settings) == 1
    assert _queue_length(settings) == 1
    with session_scope(settings.resolved_database_url) as session:
        row = session.get(Experiment, experiment_id)
        assert row is not None and row.enqueued_at is not None
        assert row.enqueued_at > utcnow() - timedelta(seconds=5)


def test_queued_experiment_waiting_behind_a_backlog_is_not_sent_twice(
    settings: Settings,
) -> None:
    settings = settings.model_copy(update={"queued_grace_seconds": 1})
    waiting = _create(settings)
    lost = _create(settings)
    send_run(settings, waiting)  # its message sits in the queue; `lost` has none
    with session_scope(settings.resolved_database_url) as session:
        session.execute(update(Experiment).values(enqueued_at=utcnow() - timedelta(seconds=5)))
    assert pending_runs(settings) == {waiting}
    assert reap_once(settings) == 1  # only the one whose message is gone
    assert _queue_length(settings) == 2
    assert pending_runs(settings) == {waiting, lost}
    with session_scope(settings.resolved_database_url) as session:
        session.execute(update(Experiment).values(enqueued_at=utcnow() - timedelta(seconds=5)))
    assert reap_once(settings) == 0  # both have a message now: nothing is duplicated
    assert _queue_length(settings) == 2
