"""Downsampling in the database: the rollup gives exactly downsample()'s points.

Random series are written in random batches, with re-reported steps (ignored) and steps
filled in late (renumbered), then read through the API with max_points small enough that
the rollup, not a whole read, answers; on both databases when ACTLAB_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.settings import Settings
from core.store import metrics, rollup
from core.store.db import session_scope
from core.store.models import Experiment, Metric, MetricRollup, MetricSeries
from service.experiments import service
from service.experiments.downsample import downsample
from service.experiments.service import WHOLE_READ_FACTOR
from tests.support import canonical_spec


def _values(rng: random.Random, n: int) -> list[float]:
    """Ties (a few repeated levels) as often as distinct values, and a spike."""
    out = [float(rng.randrange(4)) if rng.random() < 0.5 else rng.gauss(0, 1) for _ in range(n)]
    out[rng.randrange(n)] = 50.0
    return out


def _no_older(node: int) -> rollup.Extremes:
    raise KeyError(node)


def _built_whole(values: list[float]) -> dict[int, rollup.Extremes]:
    return dict(rollup.new_blocks(0, len(values), values.__getitem__, _no_older))


@pytest.mark.parametrize("seed", range(40))
def test_the_plan_picks_downsamples_points(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.choice([9, 64, 100, 257, 1000, 4099])
    values = _values(rng, n)
    rows = [(3 * s + 1, s // 10, v) for s, v in enumerate(values)]
    stored = _built_whole(values)
    for k in (1, 2, 3, 4, 5, 7, 8, 13, 40, 101):
        lo = rng.choice([0, rng.randrange(n)])
        plan = rollup.Plan(lo, n - lo, k)
        seqs = plan.direct()
        if seqs is None:
            nodes, raw = plan.needs()
            assert len(nodes) + len(raw) <= 4 * k * max(1, (n // k).bit_length())
            seqs = plan.select({x: stored[x] for x in nodes}, {s: values[s] for s in raw})
        assert [rows[s] for s in seqs] == downsample(rows[lo:], k), (n, k, lo)


@pytest.mark.parametrize("seed", range(10))
def test_blocks_written_in_batches_equal_blocks_built_whole(seed: int) -> None:
    rng = random.Random(seed)
    values = _values(rng, rng.choice([7, 8, 100, 1025, 3000]))
    stored: dict[int, rollup.Extremes] = {}
    start = 0
    while start < len(values):
        end = min(len(values), start + rng.choice([1, 1, 2, 7, 8, 9, 64, 333]))
        raw, nodes = rollup.old_nodes(start, end)

        def value_at(s: int, start: int = start, raw: range = raw) -> float:
            assert s >= start or s in raw  # reads only what old_nodes named
            return values[s]

        for node, ext in rollup.new_blocks(
            start, end, value_at, {n: stored[n] for n in nodes}.__getitem__
        ):
            assert node not in stored  # a block is written once, when complete
            stored[node] = ext
        start = end
    assert stored == _built_whole(values)


def _write(settings: Settings, exp: str, points: dict[str, list[tuple[int, int, float]]]) -> None:
    with session_scope(settings.resolved_database_url) as session:
        metrics.write_series(session, exp, points)


def _stored(settings: Settings, exp: str, name: str) -> tuple[list[float], dict[int, Any], int]:
    with session_scope(settings.resolved_database_url) as session:
        where = (Metric.experiment_id == exp, Metric.name == name)
        seqs = session.execute(
            select(Metric.seq, Metric.value).where(*where).order_by(Metric.step)
        ).all()
        assert [s for s, _ in seqs] == list(range(len(seqs)))  # seq is the position by step
        blocks = session.execute(
            select(MetricRollup.node, MetricRollup.min_seq, MetricRollup.min_value)
            .add_columns(MetricRollup.max_seq, MetricRollup.max_value)
            .where(MetricRollup.experiment_id == exp, MetricRollup.name == name)
        ).all()
        count = session.execute(
            select(MetricSeries.count).where(
                MetricSeries.experiment_id == exp, MetricSeries.name == name
            )
        ).scalar_one()
    return [v for _, v in seqs], {b[0]: tuple(b[1:]) for b in blocks}, count


def test_database_downsampling_equals_downsample(client: TestClient, settings: Settings) -> None:
    rng = random.Random(7)
    exp = client.post("/v1/experiments", json=canonical_spec()).json()["id"]
    n = 3000
    truth = {name: _values(rng, n) for name in ("a", "b")}
    steps = sorted(rng.sample(range(10 * n), n))
    late = set(rng.sample(range(n), 5))  # written after later steps: a renumbering
    start = 0
    while start < n:
        end = min(n, start + rng.choice([1, 5, 64, 500]))
        batch = {
            name: [(steps[i], steps[i] // 100, vals[i]) for i in range(start, end) if i not in late]
            for name, vals in truth.items()
        }
        if start:  # a resumed attempt re-reports a step with another value: ignored
            batch["a"].append((steps[start - 1], 0, 1e9))
        _write(settings, exp, batch)
        start = end
    _write(
        settings,
        exp,
        {
            name: [(steps[i], steps[i] // 100, vals[i]) for i in late]
            for name, vals in truth.items()
        },
    )
    _write(settings, exp, {"a": [(steps[-1] + 1, 0, 2.0)], "b": [(steps[0], 0, -1e9)]})
    truth["a"].append(2.0)
    steps_a = [*steps, steps[-1] + 1]

    for name, vals in truth.items():
        stored_values, blocks, count = _stored(settings, exp, name)
        assert stored_values == vals and count == len(vals)
        assert blocks == _built_whole(vals)

    whole = client.get(f"/v1/experiments/{exp}/metrics", params={"format": "columnar"}).json()
    assert whole["series"]["a"]["step"] == steps_a
    rows = {
        k: list(zip(c["step"], c["epoch"], c["value"], strict=True))
        for k, c in whole["series"].items()
    }
    for k, after in [
        (4, None),
        (7, None),
        (40, None),
        (300, None),
        (40, steps[1234]),
        (5, steps[2900]),
    ]:
        assert len(rows["a"]) > WHOLE_READ_FACTOR * k or after  # the rollup answers
        params: dict[str, Any] = {"max_points": k, "format": "columnar"}
        if after is not None:
            params["after_step"] = after
        got = client.get(f"/v1/experiments/{exp}/metrics", params=params).json()["series"]
        for name, series in got.items():
            full = [r for r in rows[name] if after is None or r[0] > after]
            out = list(zip(series["step"], series["epoch"], series["value"], strict=True))
            assert out == downsample(full, k), (name, k, after)
            _assert_extremes(full, out, k)
    with session_scope(settings.resolved_database_url) as session:  # rows, not only JSON
        experiment = session.get(Experiment, exp)
        assert experiment is not None
        got_rows = service.metric_series(
            session=session,
            experiment=experiment,
            names=["a"],
            after_step=None,
            max_points=40,
        )["a"]
    assert got_rows == downsample(rows["a"], 40)


def _assert_extremes(full: list[Any], out: list[Any], k: int) -> None:
    """Each equal-count bucket's first, last, lowest and highest point is in `out`."""
    assert len(out) == min(k, len(full))
    kept = set(out)
    buckets = k // 4
    for b in range(buckets):
        bucket = full[b * len(full) // buckets : (b + 1) * len(full) // buckets]
        for row in (
            bucket[0],
            bucket[-1],
            min(bucket, key=lambda r: r[2]),
            max(bucket, key=lambda r: r[2]),
        ):
            assert row in kept
