"""Eight processes write metrics at once, readers read: no "database is locked" reaches anyone.

It always runs on SQLite (the single-writer database this is about) and also on Postgres
when the suite runs there.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.settings import Settings
from core.spec import ExperimentSpec
from core.store import experiments as repo
from core.store import lifecycle
from core.store import metrics as metrics_repo
from core.store.db import session_scope
from core.store.models import Experiment, Metric
from tests.scratch import drop_scratch, scratch_database
from tests.support import canonical_spec

pytestmark = pytest.mark.integration
WRITERS, READERS, EVALS, NAMES = 8, 2, 60, 12


class _Errors(logging.Handler):
    """Counts the errors a callback logs and swallows (a failed heartbeat is only logged)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage() + str(record.exc_info and record.exc_info[1]))


def _write(settings_json: str, experiment_id: str) -> tuple[str, list[str]]:
    """A worker's write pattern: fenced lease renewals and metric batches."""
    from worker.jobs.attempt import StoreCallbacks

    errors = _Errors()
    logging.getLogger("actlab").addHandler(errors)
    settings = Settings.model_validate_json(settings_json)
    with session_scope(settings.resolved_database_url) as session:
        claim = lifecycle.claim(session, experiment_id, worker="writer", lease_seconds=60)
    assert claim is not None
    callbacks = StoreCallbacks(claim, settings)
    for step in range(1, EVALS + 1):
        values = {f"m/{i}": step * 0.5 + i for i in range(NAMES)}
        callbacks.on_metrics(step=step, epoch=step, values=values)
        callbacks.on_progress(epoch=step, step=step, total_steps=EVALS)
        callbacks._renew()  # a heartbeat between batches, as the heartbeat thread would
    return experiment_id, errors.messages


def _read(url: str, ids: list[str]) -> int:
    """An API's read pattern while the writers run: every experiment's series, repeatedly."""
    reads = 0
    for _ in range(EVALS // 2):
        for experiment_id in ids:
            with session_scope(url) as session:
                metrics_repo.series(session, experiment_id, names=None, after_step=None)
                session.get(Experiment, experiment_id)
            reads += 1
    return reads


@pytest.fixture(params=["sqlite", "configured"])
def store_url(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> str:
    if request.param == "configured":
        if database_url.startswith("sqlite"):
            pytest.skip("the configured database is SQLite: covered by the sqlite case")
        return database_url
    if not database_url.startswith("sqlite"):
        pytest.skip(
            "the SQLite case says the same in every configuration: it ran in the SQLite pass"
        )
    directory = tmp_path / "sqlite"
    directory.mkdir()
    url = scratch_database(None, directory)
    request.addfinalizer(lambda: drop_scratch(url))
    return url


def test_eight_writers_at_once(settings: Settings, store_url: str) -> None:
    settings = settings.model_copy(update={"database_url": store_url})
    with session_scope(store_url) as session:
        ids = [
            repo.create(session, spec=ExperimentSpec.model_validate(canonical_spec(seed=i))).id
            for i in range(WRITERS)
        ]
    ctx = mp.get_context("spawn")
    with ctx.Pool(WRITERS + READERS) as pool:
        writers = [pool.apply_async(_write, (settings.model_dump_json(), i)) for i in ids]
        readers = [pool.apply_async(_read, (store_url, ids)) for _ in range(READERS)]
        done = [w.get(timeout=300) for w in writers]  # re-raises any writer's exception
        reads = [r.get(timeout=300) for r in readers]
    assert sorted(i for i, _ in done) == sorted(ids)
    assert [m for _, messages in done for m in messages] == []  # no swallowed error either
    assert reads == [EVALS // 2 * WRITERS] * READERS
    with session_scope(store_url) as session:
        # Each evaluation also records what the run used (worker/resources.py): 2 names.
        learnt = Metric.name.not_like("sys/%")
        total = session.execute(select(func.count()).select_from(Metric).where(learnt)).scalar_one()
        used = session.execute(select(func.count()).select_from(Metric).where(~learnt)).scalar_one()
        for experiment_id in ids:
            row = session.get(Experiment, experiment_id)
            assert row is not None and row.progress_step == EVALS
    assert total == WRITERS * EVALS * NAMES
    assert used == WRITERS * EVALS * 2  # sys/rss_bytes and sys/cpu_percent
