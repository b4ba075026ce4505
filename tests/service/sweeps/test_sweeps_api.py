"""POST/GET /v1/sweeps against a real database (no worker: results are written directly)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import stats as sps
from statsmodels.stats import multitest

from core.examples import encode_hits
from core.settings import Settings
from core.store.db import session_scope
from core.store.metrics import insert_points
from core.store.models import Experiment
from service.app import create_app
from service.auth import create_key
from service.sweeps.schemas import sweep_status
from service.sweeps.stats import crossed_bootstrap, crossed_rows
from tests.support import canonical_spec

ARMS = ["relu", "noisy_relu", "hard_tanh"]


def _key(settings: Settings, owner: str) -> str:
    with session_scope(settings.resolved_database_url) as session:
        return create_key(session, owner=owner)


def _client(settings: Settings, owner: str = "alice", **overrides: Any) -> TestClient:
    app = create_app(settings.model_copy(update={"auth_enabled": True, **overrides}))
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {_key(settings, owner)}"
    return client


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    """A client authenticated as alice, so owner checks are real."""
    with _client(settings) as client:
        yield client


def sweep_body(**overrides: Any) -> dict[str, Any]:
    base = canonical_spec(training={"epochs": 1})
    del base["name"], base["seed"]
    body = {
        "name": "units",
        "base_spec": base,
        "grid": {"activation.name": ["relu", "noisy_relu"]},
        "seeds": [0, 1, 2],
        "metric": "test/acc",
    }
    return {**body, **overrides}


def _experiments(api: TestClient, sweep_id: str) -> list[dict[str, Any]]:
    body = api.get("/v1/experiments", params={"sweep_id": sweep_id, "limit": 500}).json()
    return body["items"]


def _problem(response: Any, type_: str = "invalid-request") -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/" + type_)
    return body


def test_grid_times_seeds_experiments_each_with_its_spec(api: TestClient) -> None:
    grid = {"activation.name": ["relu", "noisy_relu"], "noise_schedule.kind": ["cosine", "linear"]}
    response = api.post("/v1/sweeps", json=sweep_body(grid=grid, tags=["study"]))
    assert response.status_code == 201, response.text
    sweep = response.json()
    assert sweep["id"].startswith("swp_") and sweep["size"] == 12
    assert sweep["status_counts"] == {"queued": 12}
    assert sweep["status"] == "queued"
    assert [row["label"] for row in sweep["aggregate"]] == [
        "activation.name=relu,noise_schedule.kind=cosine",
        "activation.name=relu,noise_schedule.kind=linear",
        "activation.name=noisy_relu,noise_schedule.kind=cosine",
        "activation.name=noisy_relu,noise_schedule.kind=linear",
    ]
    assert all(row["n"] == 0 and row["n_pending"] == 3 for row in sweep["aggregate"])
    exps = _experiments(api, sweep["id"])
    assert len(exps) == 12
    seen = set()
    for exp in exps:
        spec = exp["spec"]
        unit, kind, seed = spec["activation"]["name"], spec["noise_schedule"]["kind"], spec["seed"]
        seen.add((unit, kind, seed))
        assert exp["name"] == f"units/activation.name={unit},noise_schedule.kind={kind}/seed={seed}"
        assert exp["status"] == "queued" and exp["sweep_id"] == sweep["id"]
        assert "study" in exp["tags"]
        assert spec["training"]["epochs"] == 1 and spec["model"]["hidden"] == [100, 100]
        # The base's sigma is kept for the unit that takes it, dropped for relu.
        assert spec["activation"]["params"].get("sigma") == (0.3 if unit == "noisy_relu" else None)
    assert len(seen) == 12


@pytest.mark.parametrize(
    ("overrides", "metric"),
    [
        ({}, "val/acc"),  # every member holds out 10% for validation (the default)
        # One arm holds out nothing: it has no val/acc to rank on.
        ({"grid": {"dataset.val_fraction": [0.1, 0.0]}}, "test/acc"),
        ({"grid": {"dataset.val_fraction": [0.1, 0.2]}}, "val/acc"),
        ({"metric": "val/loss"}, "val/loss"),  # asked for: kept
        (
            {
                "grid": None,
                "search": {
                    "kind": "optuna",
                    "n_trials": 2,
                    "space": {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1}},
                },
            },
            "val/acc",
        ),
    ],
)
def test_a_sweep_without_a_metric_ranks_on_validation_where_it_can(
    api: TestClient, overrides: dict[str, Any], metric: str
) -> None:
    body = {k: v for k, v in {**sweep_body(), **overrides}.items() if v is not None}
    if "metric" not in overrides:
        del body["metric"]
    response = api.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    sweep = response.json()
    assert sweep["metric"] == metric
    assert api.get(f"/v1/sweeps/{sweep['id']}").json()["metric"] == metric


def test_grid_over_a_param(api: TestClient) -> None:
    grid = {"activation.params.sigma": [0.1, 0.5]}
    sweep = api.post("/v1/sweeps", json=sweep_body(grid=grid, seeds=[7])).json()
    sigmas = sorted(
        e["spec"]["activation"]["params"]["sigma"] for e in _experiments(api, sweep["id"])
    )
    assert sigmas == [0.1, 0.5]


def test_a_bad_grid_point_is_named_and_nothing_is_created(api: TestClient) -> None:
    grid = {"activation.name": ["relu", "swishy"]}
    body = _problem(api.post("/v1/sweeps", json=sweep_body(grid=grid)))
    error = body["errors"][0]
    assert error["path"] == "grid[activation.name=swishy].activation.name"
    assert "noisy_relu" in error["message"]
    assert "grid[activation.name=swishy]" in body["detail"]
    assert api.get("/v1/experiments").json()["items"] == []
    assert api.get("/v1/sweeps").json()["items"] == []


def test_a_bad_param_value_names_point_and_field(api: TestClient) -> None:
    grid = {"activation.params.sigma": [0.3, -1.0]}
    body = _problem(api.post("/v1/sweeps", json=sweep_body(grid=grid)))
    # The path reaches the leaf parameter inside the failing point.
    assert [e["path"] for e in body["errors"]] == [
        "grid[activation.params.sigma=-1.0].activation.params.sigma"
    ]
    assert "sigma" in body["errors"][0]["message"]
    assert api.get("/v1/experiments").json()["items"] == []


def test_size_over_the_cap_names_the_setting(settings: Settings) -> None:
    with _client(settings, max_sweep_size=5) as api:
        body = _problem(api.post("/v1/sweeps", json=sweep_body()), "limit-exceeded")
        assert "ACTLAB_MAX_SWEEP_SIZE" in body["detail"] and "6" in body["detail"]
        assert body["setting"] == "ACTLAB_MAX_SWEEP_SIZE" and body["limit"] == 5
        assert api.get("/v1/experiments").json()["items"] == []
        assert api.post("/v1/sweeps", json=sweep_body(seeds=[0, 1])).status_code == 201


def test_every_point_is_held_to_the_spec_limits(settings: Settings) -> None:
    with _client(settings, max_epochs=2) as api:
        body = sweep_body(grid={"training.epochs": [1, 3]}, seeds=[0])
        problem = _problem(api.post("/v1/sweeps", json=body), "limit-exceeded")
        assert problem["setting"] == "ACTLAB_MAX_EPOCHS"
        assert api.get("/v1/experiments").json()["items"] == []


def test_a_sweep_counts_toward_the_owners_queue(settings: Settings) -> None:
    with _client(settings, max_queued_per_owner=7) as api:
        assert api.post("/v1/sweeps", json=sweep_body()).status_code == 201
        response = api.post("/v1/sweeps", json=sweep_body())
        assert response.status_code == 429, response.text
        assert response.json()["setting"] == "ACTLAB_MAX_QUEUED_PER_OWNER"
        assert len(api.get("/v1/experiments").json()["items"]) == 6


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"baseline": {"activation.name": "gelu"}}, "baseline"),
        ({"baseline": {"optimizer.lr": 0.1}}, "baseline"),
        ({"seeds": [0, 0]}, "seeds"),
        ({"seeds": []}, "seeds"),
        ({"grid": {"seed": [1, 2]}}, "grid"),
        ({"grid": {"activation.name": []}}, "grid"),
        ({"grid": {"activation": [{"name": "relu"}], "activation.name": ["relu"]}}, "grid"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_requests(api: TestClient, overrides: dict[str, Any], path: str) -> None:
    body = _problem(api.post("/v1/sweeps", json=sweep_body(**overrides)))
    assert body["errors"][0]["path"] == path


def test_baseline_must_single_out_one_point(api: TestClient) -> None:
    grid = {"activation.name": ["relu", "noisy_relu"], "optimizer.lr": [0.01, 0.1]}
    ambiguous = sweep_body(grid=grid, baseline={"activation.name": "relu"})
    assert "several" in _problem(api.post("/v1/sweeps", json=ambiguous))["detail"]
    exact = sweep_body(grid=grid, baseline={"activation.name": "relu", "optimizer.lr": 0.1})
    sweep = api.post("/v1/sweeps", json=exact).json()
    assert sweep["baseline"] == {"activation.name": "relu", "optimizer.lr": 0.1}
    assert {c["baseline_label"] for c in sweep["comparisons"]} == {
        "activation.name=relu,optimizer.lr=0.1"
    }


def _finish(settings: Settings, results: dict[str, tuple[str, float | None]], metric: str) -> None:
    """Mark experiments finished with a summary value, as a worker would."""
    with session_scope(settings.resolved_database_url) as session:
        for exp_id, (status, value) in results.items():
            row = session.get(Experiment, exp_id)
            assert row is not None
            row.status = status
            row.summary = None if value is None else {metric: value, "other": 0.0}


def _stats(values: list[float]) -> tuple[float, float, float, float]:
    a = np.asarray(values)
    half = sps.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a))
    return a.mean(), a.std(ddof=1), a.mean() - half, a.mean() + half


def test_aggregate_and_paired_comparison(settings: Settings, api: TestClient) -> None:
    body = sweep_body(grid={"activation.name": ARMS}, seeds=[0, 1, 2, 3], baseline=None)
    sweep = api.post("/v1/sweeps", json=body).json()
    exps = {
        (e["spec"]["activation"]["name"], e["spec"]["seed"]): e["id"]
        for e in _experiments(api, sweep["id"])
    }
    rng = np.random.default_rng(5)
    acc = {(unit, s): float(rng.uniform(0.8, 0.95)) for unit in ARMS for s in range(4)}
    results: dict[str, tuple[str, float | None]] = {
        exps[k]: ("succeeded", v) for k, v in acc.items()
    }
    results[exps[("hard_tanh", 3)]] = ("failed", None)
    results[exps[("hard_tanh", 2)]] = ("running", None)
    _finish(settings, results, "test/acc")
    # One succeeded run without a summary value: its last reported point counts.
    del_id = exps[("noisy_relu", 1)]
    with session_scope(settings.resolved_database_url) as session:
        session.get(Experiment, del_id).summary = {}  # type: ignore[union-attr]
        insert_points(session, del_id, step=5, epoch=1, values={"test/acc": 0.1})
        insert_points(session, del_id, step=9, epoch=2, values={"test/acc": acc[("noisy_relu", 1)]})

    got = api.get(f"/v1/sweeps/{sweep['id']}").json()
    assert got["status_counts"] == {"succeeded": 10, "failed": 1, "running": 1}
    assert got["status"] == "running"
    assert got["metric"] == "test/acc" and got["baseline"] == {"activation.name": "relu"}
    rows = {r["point"]["activation.name"]: r for r in got["aggregate"]}
    arms = {u: [acc[(u, s)] for s in range(4)] for u in ARMS}
    arms["hard_tanh"] = arms["hard_tanh"][:2]
    for unit, values in arms.items():
        row = rows[unit]
        assert row["n"] == len(values)
        expected = _stats(values)
        got_values = (row["mean"], row["std"], row["ci_low"], row["ci_high"])
        assert got_values == pytest.approx(expected, abs=1e-9)
    assert (rows["hard_tanh"]["n_failed"], rows["hard_tanh"]["n_pending"]) == (1, 1)
    assert rows["noisy_relu"]["n_missing"] == 0
    comparisons = {c["point"]["activation.name"]: c for c in got["comparisons"]}
    assert set(comparisons) == {"noisy_relu", "hard_tanh"}
    for unit in ("noisy_relu", "hard_tanh"):
        c = comparisons[unit]
        a, b = np.array(arms[unit]), np.array(arms["relu"][: len(arms[unit])])
        assert c["baseline_label"] == "activation.name=relu"
        assert c["n_pairs"] == len(a)
        _, _, low, high = _stats(list(a - b))
        assert c["mean_diff"] == pytest.approx((a - b).mean(), abs=1e-9)
        assert (c["ci_low"], c["ci_high"]) == pytest.approx((low, high), abs=1e-9)
        assert c["p_value"] == pytest.approx(sps.ttest_rel(a, b).pvalue, abs=1e-9)
        diff = a - b
        assert c["d_z"] == pytest.approx(diff.mean() / diff.std(ddof=1), abs=1e-9)
        assert c["test"] == "paired_t" and c["flags"] == []
    # The family: both arms against relu, corrected together (statsmodels' multipletests).
    raw = [comparisons[u]["p_value"] for u in ("noisy_relu", "hard_tanh")]
    for key, method in (("p_holm", "holm"), ("p_bh", "fdr_bh")):
        ref = multitest.multipletests(raw, method=method)[1]
        got_p = [comparisons[u][key] for u in ("noisy_relu", "hard_tanh")]
        assert got_p == pytest.approx(list(ref), abs=1e-12)
    assert got["family"] == {"kind": "baseline", "size": 2, "alpha": 0.05}
    # hard_tanh: seed 3 failed and seed 2 runs, so relu's seeds 2 and 3 are not paired.
    assert (comparisons["hard_tanh"]["n_failed"], comparisons["hard_tanh"]["n_dropped"]) == (1, 2)
    assert (comparisons["noisy_relu"]["n_failed"], comparisons["noisy_relu"]["n_dropped"]) == (0, 0)
    pairs = api.get(f"/v1/sweeps/{sweep['id']}", params={"family": "all_pairs", "margin": 0.05})
    every = pairs.json()
    assert every["family"]["kind"] == "all_pairs" and len(every["comparisons"]) == 3
    assert {(c["label"], c["baseline_label"]) for c in every["comparisons"]} == {
        ("activation.name=noisy_relu", "activation.name=relu"),
        ("activation.name=hard_tanh", "activation.name=relu"),
        ("activation.name=hard_tanh", "activation.name=noisy_relu"),
    }
    assert all(c["margin"] == 0.05 and c["tost_p"] is not None for c in every["comparisons"])
    values = {e["id"]: e["value"] for e in got["experiments"]}
    assert values[del_id] == acc[("noisy_relu", 1)]
    json.dumps(got, allow_nan=False)

    # Another baseline, by label or as JSON, and another metric.
    by_label = api.get(
        f"/v1/sweeps/{sweep['id']}", params={"baseline": "activation.name=hard_tanh"}
    )
    assert by_label.json()["comparisons"][0]["n_pairs"] == 2
    as_json = api.get(
        f"/v1/sweeps/{sweep['id']}",
        params={"baseline": json.dumps({"activation.name": "noisy_relu"})},
    ).json()
    assert {c["label"] for c in as_json["comparisons"]} == {
        "activation.name=relu",
        "activation.name=hard_tanh",
    }
    other = api.get(f"/v1/sweeps/{sweep['id']}", params={"metric": "other"}).json()
    assert [r["mean"] for r in other["aggregate"]] == [0.0, 0.0, 0.0]
    assert other["aggregate"][1]["n_missing"] == 1  # the run whose summary is empty
    _problem(api.get(f"/v1/sweeps/{sweep['id']}", params={"baseline": "activation.name=gelu"}))


def test_list_is_newest_first_with_a_cursor(api: TestClient) -> None:
    ids = [
        api.post("/v1/sweeps", json=sweep_body(name=f"s{i}", seeds=[0])).json()["id"]
        for i in range(3)
    ]
    first = api.get("/v1/sweeps", params={"limit": 2}).json()
    assert [s["id"] for s in first["items"]] == ids[::-1][:2]
    assert first["items"][0]["status_counts"] == {"queued": 2}
    assert first["next_cursor"] == ids[1]
    rest = api.get("/v1/sweeps", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [s["id"] for s in rest["items"]] == [ids[0]] and rest["next_cursor"] is None


def test_unknown_and_other_owners_sweeps_are_not_found(settings: Settings, api: TestClient) -> None:
    assert api.get("/v1/sweeps/swp_nope").status_code == 404
    sweep_id = api.post("/v1/sweeps", json=sweep_body(seeds=[0])).json()["id"]
    with _client(settings, owner="bob") as bob:
        response = bob.get(f"/v1/sweeps/{sweep_id}")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
        assert bob.get("/v1/sweeps").json()["items"] == []
    assert api.get(f"/v1/sweeps/{sweep_id}").status_code == 200
    exp = _experiments(api, sweep_id)[0]
    with session_scope(settings.resolved_database_url) as session:
        assert session.get(Experiment, exp["id"]).owner_id == "alice"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({"queued": 3}, "queued"),
        ({"queued": 2, "succeeded": 1}, "running"),
        ({"cancelling": 1, "failed": 1}, "running"),
        ({"succeeded": 4}, "succeeded"),
        ({"succeeded": 3, "cancelled": 1}, "cancelled"),
        ({"succeeded": 3, "cancelled": 1, "failed": 1}, "failed"),
    ],
)
def test_a_sweeps_status_is_derived_from_its_experiments(
    counts: dict[str, int], expected: str
) -> None:
    assert sweep_status(counts) == expected


def test_bootstrap_over_seeds_and_test_examples(settings: Settings, api: TestClient) -> None:
    """With bootstrap=true on test/acc, each arm and each paired comparison carries the
    crossed (seeds x test examples) interval of the runs' stored hits, recomputed here from
    the same hits; a run whose hits do not give its test/acc is left out, and another metric
    has none (the hits are the test split's)."""
    body = sweep_body(grid={"activation.name": ARMS[:2]}, seeds=[0, 1, 2, 3], baseline=None)
    sweep = api.post("/v1/sweeps", json=body).json()
    exps = {
        (e["spec"]["activation"]["name"], e["spec"]["seed"]): e["id"]
        for e in _experiments(api, sweep["id"])
    }
    rng = np.random.default_rng(11)
    hits = {k: rng.random(300) < (0.7 if k[0] == "relu" else 0.6) for k in exps}
    with session_scope(settings.resolved_database_url) as session:
        for key, exp_id in exps.items():
            row = session.get(Experiment, exp_id)
            assert row is not None
            row.status = "succeeded"
            row.summary = {"test/acc": float(hits[key].mean()), "val/acc": 0.5}
            row.examples = encode_hits(hits[key])
        # Hits that are not this run's last evaluation (its test/acc differs): not used.
        session.get(Experiment, exps[("noisy_relu", 3)]).summary = {"test/acc": 0.123}  # type: ignore[union-attr]

    got = api.get(
        f"/v1/sweeps/{sweep['id']}", params={"metric": "test/acc", "bootstrap": "true"}
    ).json()
    rows = {r["point"]["activation.name"]: r for r in got["aggregate"]}
    relu = {s: hits[("relu", s)] for s in range(4)}
    low, high = crossed_bootstrap(crossed_rows(relu))
    assert (rows["relu"]["boot_examples_ci_low"], rows["relu"]["boot_examples_ci_high"]) == (
        low,
        high,
    )
    assert low < rows["relu"]["mean"] < high
    # noisy_relu's seed 3 has a value but no usable hits: no interval of a different mean.
    assert rows["noisy_relu"]["n"] == 4 and rows["noisy_relu"]["boot_examples_ci_low"] is None
    (c,) = got["comparisons"]
    noisy = {s: hits[("noisy_relu", s)] for s in range(3)}
    assert c["n_pairs"] == 4
    # The pair's seed 3 lacks usable hits on one side: the interval needs every paired seed.
    assert c["boot_examples_ci_low"] is None
    assert crossed_bootstrap(crossed_rows(noisy, relu))[0] is not None

    with session_scope(settings.resolved_database_url) as session:
        session.get(Experiment, exps[("noisy_relu", 3)]).summary = {  # type: ignore[union-attr]
            "test/acc": float(hits[("noisy_relu", 3)].mean())
        }
    got = api.get(
        f"/v1/sweeps/{sweep['id']}", params={"metric": "test/acc", "bootstrap": "true"}
    ).json()
    (c,) = got["comparisons"]
    noisy[3] = hits[("noisy_relu", 3)]
    expected = crossed_bootstrap(crossed_rows(noisy, relu))
    assert (c["boot_examples_ci_low"], c["boot_examples_ci_high"]) == expected
    assert expected[0] < c["mean_diff"] < expected[1]
    # Wider than the seeds-only interval: the 300 shared test examples add their spread.
    assert expected[1] - expected[0] > c["boot_ci_high"] - c["boot_ci_low"]
    for params in ({"metric": "test/acc"}, {"metric": "val/acc", "bootstrap": "true"}):
        other = api.get(f"/v1/sweeps/{sweep['id']}", params=params).json()
        assert other["comparisons"][0]["boot_examples_ci_low"] is None
        assert all(r["boot_examples_ci_low"] is None for r in other["aggregate"])
