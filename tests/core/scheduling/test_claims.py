"""Claims and preemption decisions on a real database: the policy decides (not the message),
racing processes claim each row once, owner caps hold, the grace period protects a run."""

from __future__ import annotations

import multiprocessing as mp
from datetime import timedelta

import pytest
from sqlalchemy import select

from core import scheduling
from core.settings import Settings
from core.spec import ExperimentSpec
from core.store import experiments as repo
from core.store import lifecycle, owners, workers
from core.store.db import session_scope
from core.store.models import Attempt, Experiment, Status, utcnow
from tests.support import canonical_spec


def _create(settings: Settings, owner: str, n: int, **spec: object) -> list[str]:
    with session_scope(settings.resolved_database_url) as session:
        return [
            repo.create(
                session,
                spec=ExperimentSpec.model_validate(canonical_spec(seed=i, **spec)),
                owner_id=owner,
            ).id
            for i in range(n)
        ]


def _used(settings: Settings, experiment_id: str, owner: str, *, seconds: float) -> None:
    """A finished attempt in the ledger: `owner` held a worker for `seconds` until now."""
    with session_scope(settings.resolved_database_url) as session:
        now = utcnow()
        ended = Attempt(experiment_id=experiment_id, owner=owner, worker="w", token=0, share=1.0)
        ended.started_at, ended.ended_at = now - timedelta(seconds=seconds), now
        session.add(ended)


def _claim_next(settings_json: str) -> list[str]:
    from worker import jobs

    _, claims = jobs.claim_next(Settings.model_validate_json(settings_json))
    return [c.experiment_id for c in claims]


def test_the_policy_not_the_message_picks_the_claim(settings: Settings) -> None:
    from worker import jobs

    heavy = _create(settings, "alice", 3)
    light = _create(settings, "bob", 1)
    _used(settings, heavy[0], "alice", seconds=100)  # alice used a worker already
    # Whichever message woke it, the worker claims bob's run: alice used a worker already.
    _, claims = jobs.claim_next(settings)
    assert [c.experiment_id for c in claims] == light
    _, claims = jobs.claim_next(settings)
    assert [c.experiment_id for c in claims] == heavy[:1]


def test_racing_processes_claim_each_row_once_and_owner_caps_hold(settings: Settings) -> None:
    free = _create(settings, "alice", 3)
    capped = _create(settings, "carol", 4)
    with session_scope(settings.resolved_database_url) as session:
        owners.set_knobs(session, "carol", max_running=1)
    ctx = mp.get_context("spawn")
    with ctx.Pool(8) as pool:
        results = pool.map(_claim_next, [settings.model_dump_json()] * 8)
    claimed = [i for r in results for i in r]
    assert len(claimed) == len(set(claimed)) == 4  # each row once; carol only one
    assert set(free) < set(claimed)
    assert len(set(capped) & set(claimed)) == 1
    with session_scope(settings.resolved_database_url) as session:
        running = session.scalars(
            select(Experiment.id).where(Experiment.status == Status.running.value)
        ).all()
        ledger = session.scalars(select(Attempt.experiment_id)).all()
    assert sorted(running) == sorted(claimed) == sorted(ledger)


def test_preemption_asks_the_lowest_priority_once_and_never_within_grace(
    settings: Settings,
) -> None:
    url = settings.resolved_database_url
    (low,) = _create(settings, "alice", 1, priority=-5)
    (mid,) = _create(settings, "alice", 1, priority=0)
    with session_scope(url) as session:
        workers.seen(session, name="w1", device="cpu", memory_bytes=2**34)
        workers.seen(session, name="w2", device="cpu", memory_bytes=2**34)
        lifecycle.claim(session, low, worker="w1", lease_seconds=60)
        lifecycle.claim(session, mid, worker="w2", lease_seconds=60)
    (urgent,) = _create(settings, "bob", 1, priority=10)
    with session_scope(url) as session:
        assert scheduling.preempt(session, settings) == []  # both started within the grace
    no_grace = settings.model_copy(update={"preempt_grace_seconds": 0})
    with session_scope(url) as session:
        assert scheduling.preempt(session, no_grace) == [low]  # the lowest priority
    with session_scope(url) as session:
        assert scheduling.preempt(session, no_grace) == []  # asked already: on its way
        row = session.get(Experiment, low)
        assert row is not None and row.preempt_requested_at is not None
        claim = lifecycle.Claim(low, row.lease_token, row.attempts, row.spec, None)
        assert lifecycle.renew(session, claim, lease_seconds=60).preempt
    with session_scope(url) as session:  # the worker checkpoints and hands it back
        lifecycle.finish(session, claim, status=Status.queued, reason="preempted")
    with session_scope(url) as session:
        row = session.get(Experiment, low)
        assert row is not None
        assert (row.status, row.status_reason, row.preempt_requested_at) == (
            "queued",
            "preempted",
            None,
        )
        assert session.scalar(select(Attempt.ended_at).where(Attempt.experiment_id == low))
        assert session.get(Experiment, urgent) is not None


def test_a_cancel_during_a_preemption_ends_cancelled(settings: Settings) -> None:
    url = settings.resolved_database_url
    (run,) = _create(settings, "alice", 1)
    with session_scope(url) as session:
        claim = lifecycle.claim(session, run, worker="w", lease_seconds=60)
        assert claim is not None
    with session_scope(url) as session:
        row = session.get(Experiment, run)
        assert row is not None and repo.request_cancel(session, row)
    with session_scope(url) as session:
        lifecycle.finish(session, claim, status=Status.queued, reason="preempted")
    with session_scope(url) as session:
        row = session.get(Experiment, run)
        assert row is not None and row.status == Status.cancelled.value


@pytest.mark.parametrize("scheduler", ["fair", "fifo"])
def test_fifo_remains_for_comparison(settings: Settings, scheduler: str) -> None:
    from worker import jobs

    first = _create(settings, "alice", 2)
    second = _create(settings, "bob", 1)
    _used(settings, first[0], "alice", seconds=50)
    chosen = settings.model_copy(update={"scheduler": scheduler})
    _, claims = jobs.claim_next(chosen)
    expected = first[0] if scheduler == "fifo" else second[0]
    assert [c.experiment_id for c in claims] == [expected]


def test_a_run_too_big_for_a_worker_waits_for_one_that_fits(settings: Settings) -> None:
    (big,) = _create(settings, "alice", 1)
    url = settings.resolved_database_url
    with session_scope(url) as session:
        session.get(Experiment, big).memory_bytes = 2**33  # type: ignore[union-attr]
        workers.seen(session, name="small", device="cpu", memory_bytes=2**32)
    with session_scope(url) as session:
        assert scheduling.next_unit(session, settings, memory_bytes=2**32) is None
        place = scheduling.queue_view(session, settings).of(big)
        assert place is not None and place[1].reason == "resources"
    with session_scope(url) as session:
        unit = scheduling.next_unit(session, settings, memory_bytes=2**34)
        assert unit is not None and unit.ids == (big,)
