"""A sweep's experiments carry their arm and seed as columns, and its curves are labelled."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from core.settings import Settings
from core.store.db import session_scope
from core.store.metrics import insert_points
from core.store.models import Experiment
from tests.support import canonical_spec


def _sweep(client: TestClient, **overrides: Any) -> dict[str, Any]:
    base = canonical_spec(training={"epochs": 1})
    del base["name"], base["seed"]
    body = {
        "name": "labels",
        "base_spec": base,
        "grid": {"activation.name": ["relu", "noisy_relu"]},
        "seeds": [3, 7],
        **overrides,
    }
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_each_curve_is_labelled_with_its_arm_and_seed(
    settings: Settings, client: TestClient
) -> None:
    sweep = _sweep(client)
    ids = [e["id"] for e in sweep["experiments"]]
    with session_scope(settings.resolved_database_url) as session:
        for i, exp_id in enumerate(ids):
            insert_points(session, exp_id, step=1, epoch=1, values={"val/acc": 0.1 * i})
    loner = client.post("/v1/experiments", json=canonical_spec()).json()["id"]
    body = client.get(
        "/v1/metrics/series",
        params={"sweep_id": sweep["id"], "experiment_id": loner, "name": "val/acc"},
    ).json()
    got = {(v["arm"], v["seed"]) for k, v in body["labels"].items() if k != loner}
    assert got == {
        ("activation.name=relu", 3),
        ("activation.name=relu", 7),
        ("activation.name=noisy_relu", 3),
        ("activation.name=noisy_relu", 7),
    }
    assert {v["sweep_id"] for k, v in body["labels"].items() if k != loner} == {sweep["id"]}
    assert body["labels"][loner] == {"sweep_id": None, "arm": None, "seed": None}


def test_the_arm_comes_from_the_columns_not_the_name(
    settings: Settings, client: TestClient
) -> None:
    sweep = _sweep(client)
    with session_scope(settings.resolved_database_url) as session:
        for exp in sweep["experiments"]:
            row = session.get(Experiment, exp["id"])
            assert row is not None
            assert (row.sweep_arm, row.sweep_seed) == (exp["label"], exp["seed"])
            assert row.sweep_point == exp["point"]
            row.name = "renamed"  # the name no longer says which arm or seed it is
    again = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert sorted((e["label"], e["seed"]) for e in again["experiments"]) == sorted(
        (e["label"], e["seed"]) for e in sweep["experiments"]
    )
    assert [a["n_pending"] for a in again["aggregate"]] == [2, 2]


def test_the_response_names_the_base_params_an_arm_dropped(client: TestClient) -> None:
    sweep = _sweep(client)  # the base spec's noisy_relu has sigma; relu takes none
    assert sweep["dropped_params"] == {"activation.name=relu": ["activation.params.sigma"]}
    relu = [e for e in sweep["experiments"] if e["label"] == "activation.name=relu"]
    assert relu and sweep["base_spec"]["activation"]["params"] == {"sigma": 0.3}
    kept = _sweep(client, name="kept", grid={"activation.params.sigma": [0.1, 0.2]})
    assert kept["dropped_params"] == {}


def test_a_sweep_keeps_the_names_given_to_its_arms_and_refuses_an_unknown_arm(
    client: TestClient,
) -> None:
    names = {"activation.name=noisy_relu": "NoisyReLU (ours)"}
    sweep = _sweep(client, grid={"activation.name": ["relu", "noisy_relu"]}, labels=names)
    assert client.get(f"/v1/sweeps/{sweep['id']}").json()["labels"] == names
    base = canonical_spec()
    del base["name"], base["seed"]
    bad = client.post(
        "/v1/sweeps",
        json={"name": "bad-labels", "base_spec": base, "seeds": [0],
              "grid": {"activation.name": ["relu", "noisy_relu"]},
              "labels": {"activation.name=gelu": "GELU"}},
    )  # fmt: skip
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["path"] == "labels"
    assert "activation.name=relu, activation.name=noisy_relu" in bad.json()["detail"]
