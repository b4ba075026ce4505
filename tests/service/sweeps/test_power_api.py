"""How many seeds: GET /v1/sweeps/{id}/power against statsmodels' and the normal
approximation's figures, and POST /v1/sweeps/{id}/seeds keeping the pairing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import stats as sps
from statsmodels.stats.power import TTestPower

from core.settings import Settings
from tests.service.sweeps.test_sweeps_api import _experiments, _finish, api, sweep_body

__all__ = ["api"]  # the fixture, shared with the sweeps API tests

pytestmark = pytest.mark.backend

RELU = [0.80, 0.82, 0.79, 0.81, 0.83]
NOISY = [0.82, 0.85, 0.80, 0.84, 0.84]  # differences 0.02, 0.03, 0.01, 0.03, 0.01


def _finished_sweep(api: TestClient, settings: Settings) -> dict:
    sweep = api.post("/v1/sweeps", json=sweep_body(seeds=[0, 1, 2, 3, 4])).json()
    acc = {"relu": RELU, "noisy_relu": NOISY}
    results = {
        e["id"]: ("succeeded", acc[e["spec"]["activation"]["name"]][e["spec"]["seed"]])
        for e in _experiments(api, sweep["id"])
    }
    _finish(settings, results, "test/acc")
    return sweep


def test_the_power_table_plans_seeds_from_the_observed_paired_sd(
    api: TestClient, settings: Settings
) -> None:
    sweep = _finished_sweep(api, settings)
    got = api.get(f"/v1/sweeps/{sweep['id']}/power", params={"delta": 0.01}).json()
    assert (got["family"], got["family_size"], got["alpha_per_test"]) == ("baseline", 1, 0.05)
    (row,) = got["rows"]
    sd = float(np.std(np.subtract(NOISY, RELU), ddof=1))
    assert row["n_pairs"] == 5 and row["sd_diff"] == pytest.approx(sd, abs=1e-12)
    needed = TTestPower().solve_power(effect_size=0.01 / sd, alpha=0.05, power=0.8)
    assert row["seeds_needed"] == math.ceil(needed)
    # Independently: the normal approximation plus its t correction is within a seed.
    z = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)
    assert abs(row["seeds_needed"] - ((z * sd / 0.01) ** 2 + sps.norm.ppf(0.975) ** 2 / 2)) < 1.5
    detectable = TTestPower().solve_power(nobs=5, alpha=0.05, power=0.8) * sd
    assert row["detectable_delta"] == pytest.approx(detectable, rel=1e-9)
    # Detecting the detectable difference takes about the seeds there are.
    again = api.get(
        f"/v1/sweeps/{sweep['id']}/power", params={"delta": row["detectable_delta"]}
    ).json()
    assert again["rows"][0]["seeds_needed"] == 5
    bad = api.get(f"/v1/sweeps/{sweep['id']}/power", params={"delta": 0})
    assert bad.status_code == 422 and "delta" in bad.text


def test_adding_seeds_gives_every_arm_the_same_new_seeds(
    api: TestClient, settings: Settings
) -> None:
    sweep = api.post("/v1/sweeps", json=sweep_body(seeds=[0, 1])).json()
    added = api.post(f"/v1/sweeps/{sweep['id']}/seeds", json={"seeds": [7, 8]})
    assert added.status_code == 201, added.text
    body = added.json()
    assert body["seeds"] == [0, 1, 7, 8] and body["size"] == 8
    by_arm: dict[str, set[int]] = {}
    specs = {}
    for e in _experiments(api, sweep["id"]):
        by_arm.setdefault(e["spec"]["activation"]["name"], set()).add(e["spec"]["seed"])
        specs[(e["spec"]["activation"]["name"], e["spec"]["seed"])] = e["spec"]
    assert by_arm == {"relu": {0, 1, 7, 8}, "noisy_relu": {0, 1, 7, 8}}
    old, new = specs[("noisy_relu", 0)], specs[("noisy_relu", 7)]
    assert {k: v for k, v in new.items() if k not in ("seed", "name")} == {
        k: v for k, v in old.items() if k not in ("seed", "name")
    }
    assert new["name"].endswith("/seed=7")
    again = api.post(f"/v1/sweeps/{sweep['id']}/seeds", json={"seeds": [8, 9]})
    assert again.status_code == 422 and "[8]" in again.json()["detail"]


def test_an_arm_equal_to_the_baseline_on_every_seed_is_not_in_the_family(
    api: TestClient, settings: Settings
) -> None:
    """A grid point that is the baseline's unit under another name (sigma 0 annealed) moves
    no seed: no test, so neither the comparisons' Holm nor the power table counts it."""
    body = sweep_body(grid={"activation.name": ["relu", "noisy_relu", "hard_tanh"]},
                      seeds=[0, 1, 2, 3, 4])  # fmt: skip
    sweep = api.post("/v1/sweeps", json=body).json()
    acc = {"relu": RELU, "noisy_relu": NOISY, "hard_tanh": RELU}  # hard_tanh: relu's values
    results = {
        e["id"]: ("succeeded", acc[e["spec"]["activation"]["name"]][e["spec"]["seed"]])
        for e in _experiments(api, sweep["id"])
    }
    _finish(settings, results, "test/acc")
    view = api.get(f"/v1/sweeps/{sweep['id']}").json()
    assert view["family"]["size"] == 1
    got = api.get(f"/v1/sweeps/{sweep['id']}/power", params={"delta": 0.01}).json()
    assert (got["family_size"], got["alpha_per_test"]) == (1, 0.05)
    same = next(r for r in got["rows"] if r["label"] == "activation.name=hard_tanh")
    assert same["note"] == "zero variance of the differences"
