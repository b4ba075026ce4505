"""Metric queries: several names, shape-keeping downsampling, many experiments at once."""

from __future__ import annotations

import math
import random

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from core.store import metrics
from core.store.db import session_scope
from service.experiments.downsample import downsample
from tests.support import canonical_spec


def _experiment_with_points(client: TestClient, settings: Settings, n: int, seed: int = 0) -> str:
    experiment_id: str = client.post("/v1/experiments", json=canonical_spec(seed=seed)).json()["id"]
    with session_scope(settings.resolved_database_url) as session:
        for step in range(1, n + 1):
            metrics.insert_points(
                session,
                experiment_id,
                step=step,
                epoch=step,
                values={
                    "train/loss": math.sin(step / 10) + seed,
                    "val/acc": step / n,
                    "lr": 0.01,
                },
            )
    return experiment_id


def test_names_and_after_step(client: TestClient, settings: Settings) -> None:
    exp = _experiment_with_points(client, settings, 50)
    body = client.get(
        f"/v1/experiments/{exp}/metrics",
        params=[("name", "val/acc"), ("name", "lr"), ("after_step", 45)],
    ).json()
    assert set(body["series"]) == {"val/acc", "lr"}
    assert [p["step"] for p in body["series"]["val/acc"]] == [46, 47, 48, 49, 50]


def test_duplicate_points_are_ignored(client: TestClient, settings: Settings) -> None:
    exp = _experiment_with_points(client, settings, 5)
    with session_scope(settings.resolved_database_url) as session:
        metrics.insert_points(session, exp, step=3, epoch=3, values={"val/acc": 99.0})
        metrics.insert_points(session, exp, step=6, epoch=6, values={"val/acc": math.nan})
    points = client.get(f"/v1/experiments/{exp}/metrics").json()["series"]["val/acc"]
    assert [p["value"] for p in points] == [0.2, 0.4, 0.6, 0.8, 1.0]


def test_downsampling_keeps_extremes(client: TestClient, settings: Settings) -> None:
    exp = _experiment_with_points(client, settings, 1000)
    full = client.get(f"/v1/experiments/{exp}/metrics", params={"name": "train/loss"}).json()
    small = client.get(
        f"/v1/experiments/{exp}/metrics", params={"name": "train/loss", "max_points": 40}
    ).json()
    full_pts, small_pts = full["series"]["train/loss"], small["series"]["train/loss"]
    assert len(small_pts) <= 40
    values = [p["value"] for p in full_pts]
    kept = [p["value"] for p in small_pts]
    assert max(kept) == max(values) and min(kept) == min(values)
    assert small_pts[0]["step"] == 1 and small_pts[-1]["step"] == 1000
    assert [p["step"] for p in small_pts] == sorted(p["step"] for p in small_pts)


def test_downsampling_in_the_database_keeps_a_spike(client: TestClient, settings: Settings) -> None:
    exp = client.post("/v1/experiments", json=canonical_spec()).json()["id"]
    with session_scope(settings.resolved_database_url) as session:
        for step in range(100):
            value = 5.0 if step == 57 else 0.0  # a spike strided sampling would miss
            metrics.insert_points(session, exp, step=step, epoch=0, values={"x": value})
    out = client.get(f"/v1/experiments/{exp}/metrics", params={"max_points": 8}).json()
    points = out["series"]["x"]
    assert len(points) == 8 and any(p["value"] == 5.0 for p in points)
    full = client.get(f"/v1/experiments/{exp}/metrics", params={"max_points": 200}).json()
    assert len(full["series"]["x"]) == 100


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 7, 19, 20, 21, 40])
def test_max_points_returns_min_of_n_and_available(
    client: TestClient, settings: Settings, k: int
) -> None:
    """Monotonic (val/acc), periodic (train/loss) and constant (lr) series alike; 5 of a
    20-point series used to return 2."""
    exp = _experiment_with_points(client, settings, 20)
    body = client.get(f"/v1/experiments/{exp}/metrics", params={"max_points": k}).json()
    for name, points in body["series"].items():
        steps = [p["step"] for p in points]
        assert len(steps) == min(k, 20), (name, steps)
        assert steps == sorted(set(steps)), name
        if k >= 2:
            assert steps[0] == 1 and steps[-1] == 20, name


def test_columnar_format_equals_the_points(client: TestClient, settings: Settings) -> None:
    exp = _experiment_with_points(client, settings, 30)
    for params in ({}, {"max_points": 10}, {"after_step": 25}):
        points = client.get(f"/v1/experiments/{exp}/metrics", params=params).json()
        columns = client.get(
            f"/v1/experiments/{exp}/metrics", params={**params, "format": "columnar"}
        ).json()
        assert set(columns["series"]) == set(points["series"])
        for name, pts in points["series"].items():
            col = columns["series"][name]
            assert col == {k: [p[k] for p in pts] for k in ("step", "epoch", "value")}
    batch = client.get(
        "/v1/metrics/series", params={"experiment_id": exp, "format": "columnar"}
    ).json()
    assert batch["experiments"][exp]["lr"]["value"] == [0.01] * 30
    bad = client.get(f"/v1/experiments/{exp}/metrics", params={"format": "csv"})
    assert bad.status_code == 422 and "format" in bad.text


def test_downsampling_many_experiments_keeps_each_apart(
    client: TestClient, settings: Settings
) -> None:
    a = _experiment_with_points(client, settings, 50, seed=1)
    b = _experiment_with_points(client, settings, 8, seed=2)
    body = client.get(
        "/v1/metrics/series",
        params=[("experiment_id", a), ("experiment_id", b), ("max_points", 12)],
    ).json()
    assert {n: len(p) for n, p in body["experiments"][a].items()} == dict.fromkeys(
        ["lr", "train/loss", "val/acc"], 12
    )
    assert len(body["experiments"][b]["val/acc"]) == 8


def test_many_experiments_in_one_call(client: TestClient, settings: Settings) -> None:
    a = _experiment_with_points(client, settings, 10, seed=1)
    b = _experiment_with_points(client, settings, 20, seed=2)
    body = client.get(
        "/v1/metrics/series",
        params=[("experiment_id", a), ("experiment_id", b), ("name", "val/acc")],
    ).json()
    assert set(body["experiments"]) == {a, b}
    assert len(body["experiments"][a]["val/acc"]) == 10
    assert len(body["experiments"][b]["val/acc"]) == 20
    missing = client.get("/v1/metrics/series", params={"experiment_id": "exp_nope"})
    assert missing.status_code == 404


def test_a_sweeps_curves_in_one_call(client: TestClient, settings: Settings) -> None:
    sweep = client.post(
        "/v1/sweeps",
        json={
            "name": "s",
            "base_spec": {k: v for k, v in canonical_spec().items() if k != "seed"},
            "grid": {"activation.name": ["relu", "noisy_relu"]},
            "seeds": [0, 1],
        },
    ).json()
    body = client.get("/v1/metrics/series", params={"sweep_id": sweep["id"]}).json()
    assert len(body["experiments"]) == 4


@pytest.mark.parametrize(("n", "k"), [(1000, 40), (997, 41), (20, 5), (100_000, 1000)])
def test_downsample_keeps_every_buckets_first_min_max_and_last(n: int, k: int) -> None:
    rng = random.Random(n)
    rows = [(s, s // 10, rng.gauss(0, 1)) for s in range(n)]
    out = downsample(rows, k)
    assert len(out) == k and out == sorted(set(out))
    kept = set(out)
    buckets = k // 4
    for b in range(buckets):
        bucket = rows[b * n // buckets : (b + 1) * n // buckets]
        for row in (bucket[0], bucket[-1], min(bucket, key=lambda r: r[2])):
            assert row in kept
        assert max(bucket, key=lambda r: r[2]) in kept
