"""The catalogue endpoints serve the registries and spec schemas."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

import activations
from activations import noise, schedules
from core.spec.datasets import DATASETS
from core.spec.models import MODELS


def test_activations_catalogue(client: TestClient) -> None:
    body = client.get("/v1/activations").json()
    assert [row["name"] for row in body] == [row["name"] for row in activations.catalogue()]
    noisy = {row["name"]: row for row in body}["noisy_relu"]
    assert noisy["noisy"] is True
    assert {"sigma"} <= {p["name"] for p in noisy["params"]}


def test_noise_laws_catalogue_is_the_registration(client: TestClient) -> None:
    body = client.get("/v1/noise-laws").json()
    assert body == [law.as_dict() for law in noise.laws()]
    half = {row["name"]: row for row in body}["half_normal"]
    assert half["mean"] == noise.HALF_NORMAL_MEAN and half["fused"] is True
    assert {row["name"]: row["aliases"] for row in body}["gaussian"] == ["normal"]


def test_schedules_datasets_models(client: TestClient) -> None:
    assert {r["name"] for r in client.get("/v1/schedules").json()} >= set(schedules.names())
    assert [r["name"] for r in client.get("/v1/datasets").json()] == DATASETS.names()
    models = {r["name"]: r for r in client.get("/v1/models").json()}
    assert list(models) == list(MODELS.names())
    hidden = {p["name"]: p for p in models["mlp"]["params"]}["hidden"]
    assert hidden["default"] == [100, 100]


def test_schedule_preview(client: TestClient) -> None:
    body = client.get(
        "/v1/schedules/linear/preview", params={"total": 100, "points": 3, "start": 1.0, "end": 0.0}
    ).json()
    assert [(p["t"], p["value"]) for p in body["points"]] == [(0, 1), (50, 0.5), (100, 0)]
    bad = client.get("/v1/schedules/zigzag/preview", params={"total": 10})
    assert bad.status_code == 422 and "cosine" in bad.json()["detail"]


def _preview(client: TestClient, kind: str, **params: object) -> list[tuple[float, float]]:
    response = client.get(f"/v1/schedules/{kind}/preview", params=params)
    assert response.status_code == 200, response.text
    return [(p["t"], p["value"]) for p in response.json()["points"]]


def test_schedule_preview_honours_every_parameter(client: TestClient) -> None:
    step = _preview(client, "step", total=40, points=5, step_size=20, gamma=0.1, end=0.0)
    assert step == [(0, 1), (10, 1), (20, pytest.approx(0.1)), (30, pytest.approx(0.1)), (40, 0)]
    # Without step_size: three drops over the run, not one per step.
    default = _preview(client, "step", total=400, points=5)
    assert [v for _, v in default] == [1, 0.5, 0.25, 0.125, 0]  # `end` from total on
    exp = _preview(client, "exponential", rate=0.5, points=3)  # no total: 10 units
    assert exp == [(0, 1), (5, 0.5**5), (10, 0.5**10)]
    wrong = client.get("/v1/schedules/linear/preview", params={"total": 10, "gamma": 0.5})
    assert wrong.status_code == 422 and "gamma" in wrong.json()["detail"]


def test_schedule_preview_total_is_optional_where_the_kind_ignores_it(client: TestClient) -> None:
    assert {v for _, v in _preview(client, "constant", points=3, start=0.7)} == {0.7}
    assert len(_preview(client, "step", step_size=5, points=4)) == 4
    needs = client.get("/v1/schedules/cosine/preview")
    assert needs.status_code == 422 and "total" in needs.json()["detail"]


def test_prometheus_metrics(client: TestClient) -> None:
    client.post(
        "/v1/experiments",
        json={
            "dataset": {"name": "moons"},
            "model": {"arch": "mlp"},
            "activation": {"name": "relu"},
        },
    )
    text = client.get("/metrics").text
    assert 'actlab_experiments{status="queued"} 1.0' in text
    assert "actlab_queue_depth 1.0" in text
    assert "actlab_run_duration_seconds_bucket" in text
    assert (
        'actlab_http_request_duration_seconds_count{method="POST",route="/v1/experiments"' in text
    )
