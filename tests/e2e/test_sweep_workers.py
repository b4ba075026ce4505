"""A sweep trained by a real worker: the aggregate equals what the experiments report."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import stats as sps

from tests.support import HANG_S, Process, canonical_spec

pytestmark = pytest.mark.integration

SEEDS = [0, 1, 2]


def _wait_for_sweep(client: TestClient, sweep_id: str, timeout: float = HANG_S) -> dict[str, Any]:
    """Poll until no experiment of the sweep is queued or running."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/v1/sweeps/{sweep_id}").json()
        counts = body["status_counts"]
        if sum(counts.get(s, 0) for s in ("succeeded", "failed", "cancelled")) == body["size"]:
            return body
        time.sleep(0.5)
    raise TimeoutError(f"sweep {sweep_id} not done after {timeout}s: {body.get('status_counts')}")


def _ci(values: np.ndarray) -> tuple[float, float]:
    half = sps.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return values.mean() - half, values.mean() + half


def test_sweep_of_two_units_over_three_seeds(client: TestClient, worker: Process) -> None:
    base = canonical_spec(model={"hidden": [32]}, training={"epochs": 1, "batch_size": 100})
    del base["name"], base["seed"]
    body = {
        "name": "e2e",
        "base_spec": base,
        "grid": {"activation.name": ["relu", "noisy_relu"]},
        "seeds": SEEDS,
    }
    created = client.post("/v1/sweeps", json=body)
    assert created.status_code == 201, created.text
    sweep = _wait_for_sweep(client, created.json()["id"])
    assert sweep["status_counts"] == {"succeeded": 6}, sweep["experiments"]
    assert sweep["metric"] == "val/acc"  # none asked: ranked on the validation split
    acc: dict[str, dict[int, float]] = {"relu": {}, "noisy_relu": {}}
    for row in sweep["experiments"]:
        exp = client.get(f"/v1/experiments/{row['id']}").json()
        unit = exp["spec"]["activation"]["name"]
        acc[unit][exp["spec"]["seed"]] = exp["summary"]["val/acc"]
        assert row["value"] == exp["summary"]["val/acc"]
        sigma = exp["spec"]["activation"]["params"].get("sigma")
        assert sigma == (0.3 if unit == "noisy_relu" else None)
    arms = {r["point"]["activation.name"]: r for r in sweep["aggregate"]}
    for unit, by_seed in acc.items():
        values = np.array([by_seed[s] for s in SEEDS])
        row = arms[unit]
        assert row["n"] == 3 and row["n_pending"] == row["n_failed"] == 0
        assert row["mean"] == pytest.approx(values.mean(), abs=1e-9)
        assert row["std"] == pytest.approx(values.std(ddof=1), abs=1e-9)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(_ci(values), abs=1e-9)
    (comparison,) = sweep["comparisons"]
    noisy = np.array([acc["noisy_relu"][s] for s in SEEDS])
    relu = np.array([acc["relu"][s] for s in SEEDS])
    assert comparison["label"] == "activation.name=noisy_relu"
    assert comparison["baseline_label"] == "activation.name=relu"
    assert comparison["n_pairs"] == 3
    assert comparison["mean_diff"] == pytest.approx((noisy - relu).mean(), abs=1e-9)
    assert (comparison["ci_low"], comparison["ci_high"]) == pytest.approx(
        _ci(noisy - relu), abs=1e-9
    )
    if np.std(noisy - relu) > 0:
        expected_p = sps.ttest_rel(noisy, relu).pvalue
        assert comparison["p_value"] == pytest.approx(expected_p, abs=1e-9)
    # The worker stored each run's per-test-example hits: on test/acc a bootstrap=true view
    # gives the intervals that resample the test examples as well as the seeds.
    boot = client.get(
        f"/v1/sweeps/{created.json()['id']}", params={"metric": "test/acc", "bootstrap": "true"}
    ).json()
    for row in boot["aggregate"]:
        assert row["boot_examples_ci_low"] <= row["mean"] <= row["boot_examples_ci_high"]
    (paired,) = boot["comparisons"]
    low, high = paired["boot_examples_ci_low"], paired["boot_examples_ci_high"]
    assert low <= paired["mean_diff"] <= high
