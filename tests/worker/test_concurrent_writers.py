"""Eight processes write metrics at once: no "database is locked" reaches anyone."""

from __future__ import annotations

import multiprocessing as mp

import pytest
from sqlalchemy import func, select

from service.settings import Settings
from service.spec import ExperimentSpec
from service.store import experiments as repo
from service.store.db import session_scope
from service.store.models import Metric
from tests.support import canonical_spec

pytestmark = pytest.mark.integration
WRITERS, EVALS, NAMES = 8, 60, 12


def _write(settings_json: str, experiment_id: str) -> str:
    """A worker's write pattern: fenced lease renewals and metric batches."""
    from worker.runner import StoreCallbacks

    settings = Settings.model_validate_json(settings_json)
    with session_scope(settings.resolved_database_url) as session:
        claim = repo.claim(session, experiment_id, worker="writer", lease_seconds=60)
    assert claim is not None
    callbacks = StoreCallbacks(claim, settings)
    for step in range(1, EVALS + 1):
        values = {f"m/{i}": step * 0.5 + i for i in range(NAMES)}
        callbacks.on_metrics(step=step, epoch=step, values=values)
        callbacks.on_progress(epoch=step, step=step, total_steps=EVALS)
        callbacks._renew()  # a heartbeat between batches, as the heartbeat thread would
    return experiment_id


def test_eight_writers_at_once(settings: Settings) -> None:
    url = settings.resolved_database_url
    with session_scope(url) as session:
        ids = [
            repo.create(session, spec=ExperimentSpec.model_validate(canonical_spec(seed=i))).id
            for i in range(WRITERS)
        ]
    ctx = mp.get_context("spawn")
    with ctx.Pool(WRITERS) as pool:
        results = [pool.apply_async(_write, (settings.model_dump_json(), i)) for i in ids]
        done = [r.get(timeout=300) for r in results]  # re-raises any writer's exception
    assert sorted(done) == sorted(ids)
    with session_scope(url) as session:
        total = session.execute(select(func.count()).select_from(Metric)).scalar_one()
        for experiment_id in ids:
            row = repo.get(session, experiment_id)
            assert row is not None and row.progress_step == EVALS
    assert total == WRITERS * EVALS * NAMES
