"""Fork sweeps without a worker: an experiment's fork over a grid and seeds, every member of a
sweep forked from its own checkpoint, packs of forks, an Optuna search whose trials are forks,
and the 422s (tests/e2e/test_forks.py trains one, tests/e2e/test_optuna_search.py an Optuna
one; docs/studies/continuation.py is the worked study)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.artifacts import kept_dir, kept_name
from core.settings import Settings
from tests.support import canonical_spec

NOISE = {"noise_schedule.start": [1.0, 0.0, 2.0]}


def _keep(settings: Settings, experiment_id: str, *steps: int) -> None:
    directory = kept_dir(settings, experiment_id)
    directory.mkdir(parents=True, exist_ok=True)
    for step in steps:
        (directory / kept_name(step)).write_bytes(b"")


def _parent(client: TestClient, settings: Settings, *steps: int) -> str:
    spec = canonical_spec(noise_schedule={"kind": "constant", "start": 1.0})
    experiment_id: str = client.post("/v1/experiments", json=spec).json()["id"]
    _keep(settings, experiment_id, *steps)
    return experiment_id


def test_a_fork_sweep_of_an_experiment_forks_each_point_and_seed(
    client: TestClient, settings: Settings
) -> None:
    parent = _parent(client, settings, 360, 720)
    body = {
        "name": "continuation",
        "fork": {"experiment_id": parent, "at_step": 360},
        "grid": NOISE,
        "seeds": [0, 1, 2, 3, 4],
        "baseline": {"noise_schedule.start": 1.0},
        "packing": {"max_members": 16},
    }
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    sweep = response.json()
    assert sweep["size"] == 15 and len(sweep["experiments"]) == 15
    assert sweep["fork"] == {"experiment_id": parent, "at_step": 360, "noise_clock": "continue"}
    forks = [client.get(f"/v1/experiments/{e['id']}").json() for e in sweep["experiments"]]
    assert {f["parent_id"] for f in forks} == {parent}
    assert {f["fork"]["at_step"] for f in forks} == {360}
    assert sorted((f["spec"]["noise_schedule"]["start"], f["spec"]["seed"]) for f in forks) == [
        (s, seed) for s in (0.0, 1.0, 2.0) for seed in range(5)
    ]
    # Forks at one step pack (they differ in seed and schedule start only).
    packs = {e["pack_id"] for e in sweep["experiments"]}
    assert None not in packs and len(packs) == 1


def test_a_fork_sweep_of_a_sweep_forks_each_member_from_its_own_checkpoint(
    client: TestClient, settings: Settings
) -> None:
    base = canonical_spec()
    del base["name"], base["seed"]
    source = client.post(
        "/v1/sweeps",
        json={
            "name": "parents",
            "base_spec": base,
            "grid": {"activation.params.sigma": [0.1, 0.3]},
            "seeds": [0, 1],
        },
    ).json()
    for e in source["experiments"]:
        _keep(settings, e["id"], 360)
    body = {"name": "paired", "fork": {"sweep_id": source["id"], "at_step": 360}, "grid": NOISE}
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    sweep = response.json()
    assert sweep["size"] == 12 and sweep["seeds"] == [0, 1]
    assert sweep["grid"] == {"activation.params.sigma": [0.1, 0.3], **NOISE}
    by_parent = {e["id"]: e for e in source["experiments"]}
    for e in sweep["experiments"]:
        fork = client.get(f"/v1/experiments/{e['id']}").json()
        parent = by_parent[fork["parent_id"]]
        assert fork["spec"]["seed"] == parent["seed"] == e["seed"]  # its own parent's seed
        assert e["point"]["activation.params.sigma"] == parent["point"]["activation.params.sigma"]
    assert len(sweep["aggregate"]) == 6


@pytest.mark.parametrize(
    ("change", "path", "why"),
    [
        ({"grid": {"model.hidden": [[10]]}}, "grid.model.hidden", "another model"),
        ({"fork": {"at_step": 100}}, "fork.at_step", "kept steps: 360, 720"),
        ({"base_spec": canonical_spec()}, "", "a fork sweep's spec is its parent's"),
        ({"fork": {"at_step": 360, "experiment_id": "exp_nope"}}, "", "not found"),
    ],
)
def test_a_fork_sweep_that_cannot_continue_is_refused_naming_the_field(
    client: TestClient, settings: Settings, change: dict, path: str, why: str
) -> None:
    parent = _parent(client, settings, 360, 720)
    body = {"name": "bad", "fork": {"experiment_id": parent, "at_step": 360}, "grid": NOISE}
    body["seeds"] = [0]
    for key, value in change.items():
        body[key] = {**body[key], **value} if key == "fork" else value
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code in (404, 422), response.text
    assert why in response.text
    if path:
        assert response.json()["errors"][0]["path"] == path


def test_a_fork_sweep_that_halves_counts_its_rungs_from_the_fork(
    client: TestClient, settings: Settings
) -> None:
    parent = _parent(client, settings, 360)
    body = {
        "name": "fork-search",
        "fork": {"experiment_id": parent, "at_step": 360},
        "grid": {"optimizer.lr": [0.01, 0.001]},
        "seeds": [0],
        "search": {"kind": "successive_halving", "metric": "val/acc"},
    }
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    sweep = response.json()
    # 10 epochs of 36 steps after the fork: rungs 1, 3 and 9 epochs after step 360.
    assert sweep["search"]["start_step"] == 360
    assert [(r["rung"], r["resource"], r["step"]) for r in sweep["rungs"]] == [
        (0, 1, 396),
        (1, 3, 468),
        (2, 9, 684),
        (3, 10, None),
    ]
    assert {(e["rung"], e["rung_step"]) for e in sweep["experiments"]} == {(0, 396)}
    assert {tuple(e["promoted_at"]) for e in sweep["experiments"]} == {()}


def _optuna_fork(parent: str, **search: Any) -> dict[str, Any]:
    space = {"noise_schedule.start": {"type": "float", "low": 0.0, "high": 2.0}}
    return {
        "name": "fork-optuna",
        "fork": {"experiment_id": parent, "at_step": 360, "noise_clock": "restart"},
        "seeds": [0, 1],
        "search": {"kind": "optuna", "n_trials": 4, "parallel": 2, "space": space, **search},
    }


def test_an_optuna_fork_sweep_forks_each_trial_from_the_parents_checkpoint(
    client: TestClient, settings: Settings
) -> None:
    parent = _parent(client, settings, 360, 720)
    halving = {"reduction_factor": 3, "min_resource": 1, "unit": "epochs"}
    response = client.post("/v1/sweeps", json=_optuna_fork(parent, halving=halving))
    assert response.status_code == 201, response.text
    sweep = response.json()
    assert sweep["size"] == 8 and sweep["trials_left"] == 2 and sweep["seeds"] == [0, 1]
    assert sweep["fork"] == {
        "experiment_id": parent,
        "at_step": 360,
        "noise_clock": "restart",
        "checkpoint": f"{parent}/kept/{kept_name(360)}",
    }
    # Its rungs count from the fork: 1, 3 and 9 epochs of 36 steps after step 360.
    assert sweep["search"]["start_step"] == 360
    assert [r["step"] for r in sweep["rungs"]] == [396, 468, 684, None]
    assert len(sweep["experiments"]) == 4  # two trials in flight, two seeds each
    for e in sweep["experiments"]:
        assert (e["rung"], e["rung_step"]) == (0, 396)
        fork = client.get(f"/v1/experiments/{e['id']}").json()
        start = e["point"]["noise_schedule.start"]
        assert fork["parent_id"] == parent
        assert fork["fork"] == {
            "parent_id": parent,
            "at_step": 360,
            "overrides": {"noise_schedule.start": start, "seed": e["seed"]},
            "noise_clock": "restart",
            "checkpoint": f"{parent}/kept/{kept_name(360)}",
        }
        assert fork["spec"]["noise_schedule"]["start"] == start
        assert fork["spec"]["seed"] == e["seed"]
        assert fork["spec"]["noise_schedule"]["kind"] == "constant"  # the parent's, kept


def test_an_optuna_fork_sweep_packs_its_forks(client: TestClient, settings: Settings) -> None:
    parent = _parent(client, settings, 360)
    body = {**_optuna_fork(parent), "packing": {"max_members": 4}}
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    packs = {e["pack_id"] for e in response.json()["experiments"]}
    assert None not in packs and len(packs) == 1  # two trials of two seeds: one pack


@pytest.mark.parametrize(
    ("change", "path", "why"),
    [
        (
            {"search": {"space": {"model.hidden": {"type": "categorical", "choices": [[10]]}}}},
            "search.space.model.hidden",
            "another model has other parameters",
        ),
        (
            {"search": {"space": {"training.batch_size": {"type": "int", "low": 10, "high": 99}}}},
            "search.space.training.batch_size",
            "another batch size",
        ),
        (
            {"search": {"space": {"training.epochs": {"type": "int", "low": 5, "high": 30}}}},
            "search.space[training.epochs=5].training.epochs",
            "it starts at step 360",
        ),
        ({"fork": {"at_step": 100}}, "fork.at_step", "kept steps: 360"),
        (
            {"fork": {"sweep_id": "swp_x", "at_step": 360}, "seeds": None},
            "fork.sweep_id",
            "an optuna search forks one experiment",
        ),
    ],
)
def test_an_optuna_fork_sweep_that_cannot_fork_is_refused_naming_the_field(
    client: TestClient, settings: Settings, change: dict, path: str, why: str
) -> None:
    parent = _parent(client, settings, 360)
    body = _optuna_fork(parent)
    for key, value in change.items():
        if key == "search":  # merged into the search
            value = {**body["search"], **value}
        elif key == "fork" and "sweep_id" not in value:
            value = {**body["fork"], **value}
        body[key] = value
    body = {k: v for k, v in body.items() if v is not None}
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 422, response.text
    assert why in response.text
    assert path in [e["path"] for e in response.json()["errors"]], response.json()
