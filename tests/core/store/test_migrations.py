"""The migrations build exactly the schema the models describe, on this backend."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from core.store import rollup
from core.store.db import make_engine
from core.store.migrate import alembic_config, upgrade
from tests.scratch import drop_scratch, scratch_database
from tests.support import configured_database_url

pytestmark = pytest.mark.backend


def test_models_and_migrations_agree(database_url: str) -> None:
    # Raises if autogenerate would find anything to add, drop or alter.
    command.check(alembic_config(database_url))


def test_0006_numbers_counts_and_rolls_up_existing_points(tmp_path: Path) -> None:
    """Points stored before 0006 get their seq by step, a series count and a rollup."""
    url = scratch_database(configured_database_url(), tmp_path, migrate=False)
    try:
        upgrade(url, "0005")
        engine = make_engine(url)
        values = [float((s * 7919) % 13) for s in range(100)]
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO experiments (id, activation, tags, spec, status, progress_epoch,"
                    " progress_step, attempts, attempts_at_retry, lease_token, created_at,"
                    " updated_at) VALUES ('exp_1', 'relu', '[]', '{}', 'succeeded', 0, 0, 0, 0,"
                    " 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
            steps = list(range(100))
            random.Random(0).shuffle(steps)  # inserted out of step order
            for s in steps:
                conn.execute(
                    text(
                        "INSERT INTO metrics (experiment_id, name, step, epoch, value)"
                        " VALUES ('exp_1', 'x', :s, 0, :v)"
                    ),
                    {"s": 10 * s, "v": values[s]},
                )
        engine.dispose()
        upgrade(url)
        engine = make_engine(url)
        with engine.connect() as conn:
            seqs = conn.execute(text("SELECT step, seq FROM metrics ORDER BY step")).all()
            series = conn.execute(text("SELECT count, last_step FROM metric_series")).one()
            stored = conn.execute(
                text("SELECT node, min_seq, min_value, max_seq, max_value FROM metric_rollups")
            ).all()
        engine.dispose()
        assert [tuple(r) for r in seqs] == [(10 * s, s) for s in range(100)]
        assert tuple(series) == (100, 990)

        def no_older(node: int) -> rollup.Extremes:
            raise KeyError(node)

        built = rollup.new_blocks(0, 100, values.__getitem__, no_older)
        assert {r[0]: tuple(r[1:]) for r in stored} == dict(built)
    finally:
        drop_scratch(url)
