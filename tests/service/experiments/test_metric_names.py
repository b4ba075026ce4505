"""Metric names: an endpoint lists them, and an unknown name is a 422 that lists them."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from core.settings import Settings
from core.store.db import session_scope
from core.store.metrics import insert_points
from core.store.models import Experiment
from tests.support import canonical_spec


def _finished(settings: Settings, exp_id: str, status: str = "succeeded") -> None:
    with session_scope(settings.resolved_database_url) as session:
        insert_points(session, exp_id, step=1, epoch=1, values={"val/acc": 0.5, "train/loss": 1.0})
        row = session.get(Experiment, exp_id)
        assert row is not None
        row.status = status
        row.summary = {"val/acc": 0.5, "train/loss": 1.0}


def _problem(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return dict(response.json())


def test_the_names_endpoint_lists_what_was_reported(settings: Settings, client: TestClient) -> None:
    exp_id = client.post("/v1/experiments", json=canonical_spec()).json()["id"]
    assert client.get(f"/v1/experiments/{exp_id}/metric-names").json()["names"] == []
    _finished(settings, exp_id)
    body = client.get(f"/v1/experiments/{exp_id}/metric-names").json()
    assert body == {"experiment_id": exp_id, "names": ["train/loss", "val/acc"]}
    assert client.get("/v1/experiments/exp_nope/metric-names").status_code == 404


def test_an_unknown_name_of_a_finished_experiment_is_a_422_listing_the_names(
    settings: Settings, client: TestClient
) -> None:
    exp_id = client.post("/v1/experiments", json=canonical_spec()).json()["id"]
    # Still queued: the name may yet be reported, so it is an empty series, not an error.
    early = client.get(f"/v1/experiments/{exp_id}/metrics", params={"name": "val_acc"})
    assert early.status_code == 200 and early.json()["series"] == {}
    _finished(settings, exp_id)
    problem = _problem(
        client.get(f"/v1/experiments/{exp_id}/metrics", params={"name": ["val/acc", "val_acc"]})
    )
    assert problem["errors"][0]["path"] == "name"
    assert "'val_acc'" in problem["detail"] and "train/loss, val/acc" in problem["detail"]
    assert problem["names"] == ["train/loss", "val/acc"]
    ok = client.get(f"/v1/experiments/{exp_id}/metrics", params={"name": "val/acc"})
    assert ok.status_code == 200 and len(ok.json()["series"]["val/acc"]) == 1


def test_a_sweeps_unknown_metric_is_a_422_listing_the_names(
    settings: Settings, client: TestClient
) -> None:
    base = canonical_spec(training={"epochs": 1})
    del base["name"], base["seed"]
    body = {"name": "m", "base_spec": base, "grid": {}, "seeds": [0, 1]}
    sweep = client.post("/v1/sweeps", json=body).json()
    assert client.get(f"/v1/sweeps/{sweep['id']}", params={"metric": "val_acc"}).status_code == 200
    for exp in sweep["experiments"]:
        _finished(settings, exp["id"])
    problem = _problem(client.get(f"/v1/sweeps/{sweep['id']}", params={"metric": "val_acc"}))
    assert problem["errors"][0]["path"] == "metric" and "val/acc" in problem["detail"]
    got = client.get(f"/v1/sweeps/{sweep['id']}", params={"metric": "val/acc"}).json()
    assert got["metric"] == "val/acc" and got["aggregate"][0]["n"] == 2


def test_the_batch_series_route_refuses_a_name_none_of_its_ended_experiments_has(
    settings: Settings, client: TestClient
) -> None:
    running = client.post("/v1/experiments", json=canonical_spec()).json()["id"]
    ended = client.post("/v1/experiments", json=canonical_spec(seed=1)).json()["id"]
    ids = {"experiment_id": [running, ended]}
    # None has ended: the name may yet be reported, so an empty answer, not an error.
    early = client.get("/v1/metrics/series", params={**ids, "name": "val/accuracy"})
    assert early.status_code == 200, early.text
    _finished(settings, ended)
    problem = _problem(client.get("/v1/metrics/series", params={**ids, "name": "val/accuracy"}))
    assert problem["errors"][0]["path"] == "name" and problem["names"] == ["train/loss", "val/acc"]
    assert "'val/accuracy'" in problem["detail"] and "train/loss, val/acc" in problem["detail"]
    # A name one of them has is no error, though the running one has none of it yet.
    ok = client.get("/v1/metrics/series", params={**ids, "name": "val/acc"})
    assert ok.status_code == 200 and ok.json()["experiments"][running] == {}
