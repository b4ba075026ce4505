"""POST /v1/experiments/preview: a spec's length and its noise/scale and lr, step by step."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import canonical_spec

# moons, 1000 samples: 200 test, 800 pool, 80 validation -> 720 training examples;
# batches of 100: 7 full and one of 20 -> 8 steps an epoch, 24 in 3 epochs.
MOONS = {"name": "moons", "num_samples": 1000}


def _spec(noise: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    sections = {"dataset": MOONS, "training": {"epochs": 3, "batch_size": 100}, **overrides}
    spec = canonical_spec(**sections)
    if noise is not None:
        spec["noise_schedule"] = noise
    return spec


def _preview(client: TestClient, spec: dict[str, Any], **params: Any) -> dict[str, Any]:
    response = client.post("/v1/experiments/preview", json=spec, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _noise(client: TestClient, noise: dict[str, Any], **params: Any) -> list[tuple[int, float]]:
    body = _preview(client, _spec(noise), **params)
    return [(p["step"], p["value"]) for p in body["series"]["noise/scale"]]


def test_the_horizon_comes_from_the_split_sizes(client: TestClient) -> None:
    body = _preview(client, _spec())
    assert body["n_train"] == 720 and body["batch_size"] == 100
    assert (body["steps_per_epoch"], body["total_steps"], body["total_epochs"]) == (8, 24, 3)
    points = body["series"]["noise/scale"]
    assert [p["step"] for p in points] == list(range(1, 25))
    assert [p["epoch"] for p in points] == [1] * 8 + [2] * 8 + [3] * 8
    assert body["sampled"] is False and body["notes"] == []
    # A lone last example joins the batch before it; max_steps overrides epochs.
    lone = _preview(client, _spec(training={"batch_size": 719, "max_steps": 10, "epochs": 3}))
    assert (lone["steps_per_epoch"], lone["total_steps"], lone["total_epochs"]) == (1, 10, 10)
    mnist = _preview(client, canonical_spec(dataset={"name": "mnist1d", "num_samples": 1234}))
    assert mnist["n_train"] == int(1230 * 0.8) - round(0.1 * int(1230 * 0.8))


def test_constant_and_linear(client: TestClient) -> None:
    assert {v for _, v in _noise(client, {"kind": "constant", "start": 0.7})} == {0.7}
    linear = _noise(client, {"kind": "linear", "start": 1.0, "end": 0.0})
    assert linear == [(s, pytest.approx(1 - (s - 1) / 24, abs=1e-12)) for s in range(1, 25)]
    warm = _noise(client, {"kind": "linear", "start": 1.0, "end": 0.5, "warmup": 4})
    assert [v for _, v in warm[:5]] == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_cosine_by_epoch(client: TestClient) -> None:
    cosine = _noise(client, {"kind": "cosine", "start": 1.0, "end": 0.0, "unit": "epoch"})
    # Every step of epoch e trains with the value at t = e - 1 of a 3-epoch horizon.
    expected = [0.5 * (1 + math.cos(math.pi * ((s - 1) // 8) / 3)) for s in range(1, 25)]
    assert [v for _, v in cosine] == pytest.approx(expected, abs=1e-12)


def test_exponential_and_step(client: TestClient) -> None:
    rate = _noise(client, {"kind": "exponential", "params": {"rate": 0.5}})
    assert [v for _, v in rate] == pytest.approx([0.5 ** (s - 1) for s in range(1, 25)])
    geometric = _noise(client, {"kind": "exponential", "start": 1.0, "end": 0.01})
    assert geometric[0][1] == 1.0
    assert geometric[12][1] == pytest.approx(0.01 ** (12 / 24))
    step = _noise(client, {"kind": "step", "params": {"step_size": 5, "gamma": 0.1}})
    assert [v for _, v in step] == pytest.approx([0.1 ** ((s - 1) // 5) for s in range(1, 25)])
    # The default step size: three drops over the run (24 // 4 = 6 steps each).
    default = _noise(client, {"kind": "step"})
    assert [v for _, v in default[::6]] == [1.0, 0.5, 0.25, 0.125]


def test_lr_is_the_optimizer_lr_times_its_schedule(client: TestClient) -> None:
    lr_schedule = {"kind": "cosine", "start": 1.0, "end": 0.1, "unit": "epoch"}
    spec = _spec(optimizer={"name": "adam", "lr": 0.01, "lr_schedule": lr_schedule})
    lr = [p["value"] for p in _preview(client, spec)["series"]["lr"]]
    by_epoch = [0.1 + 0.9 * (1 + math.cos(math.pi * e / 3)) / 2 for e in range(3)]
    assert lr == pytest.approx([0.01 * by_epoch[(s - 1) // 8] for s in range(1, 25)])
    constant = _preview(client, _spec())["series"]["lr"]
    assert {p["value"] for p in constant} == {0.01}


def test_evaluation_steps(client: TestClient) -> None:
    def steps(training: dict[str, Any]) -> list[int]:
        spec = _spec(training={"epochs": 3, "batch_size": 100, **training})
        body = _preview(client, spec, steps="evaluations")
        return [p["step"] for p in body["series"]["noise/scale"]]

    assert steps({}) == [8, 16, 24]
    assert steps({"eval_every": 2}) == [16, 24]  # the last step is always evaluated
    assert steps({"max_steps": 10}) == [8, 10]
    assert steps({"max_steps": 10, "eval_every": 2}) == [10]


def test_max_points_and_columnar(client: TestClient) -> None:
    body = _preview(client, _spec({"kind": "linear"}), max_points=5, format="columnar")
    columns = body["series"]["noise/scale"]
    assert len(columns["step"]) == len(columns["value"]) == len(columns["epoch"]) == 5
    assert columns["step"][0] == 1 and columns["step"][-1] == 24
    assert columns["value"][0] == 1.0
    assert len(_preview(client, _spec(), max_points=100)["series"]["lr"]) == 24


def test_a_long_run_is_evaluated_at_evenly_spaced_steps(client: TestClient) -> None:
    spec = _spec({"kind": "linear"}, training={"batch_size": 100, "max_steps": 300_000})
    body = _preview(client, spec, max_points=3)
    assert body["sampled"] is True and "300000 steps" in body["notes"][0]
    points = body["series"]["noise/scale"]
    assert [points[0]["step"], points[-1]["step"]] == [1, 300_000]
    for p in points:  # each sampled step's exact value
        assert p["value"] == pytest.approx(1 - (p["step"] - 1) / 300_000, abs=1e-12)


def test_notes_name_what_may_end_the_run_sooner(client: TestClient) -> None:
    spec = _spec(training={"epochs": 3, "early_stopping": {"patience": 2}, "time_limit_s": 60})
    notes = _preview(client, spec)["notes"]
    assert "early stopping (val/loss, patience 2)" in notes[0] and "60 s" in notes[1]


@pytest.mark.parametrize(
    "bad",
    [
        _spec(activation={"name": "noisy_relu", "params": {"sigma": -1}}),
        _spec({"kind": "zigzag"}),
        _spec(dataset={"name": "moons", "num_samples": 5}),
        _spec(training={"epochs": 1_000_000}),
        {"dataset": {"name": "moons"}},
    ],
    ids=["param", "schedule", "dataset", "epochs", "missing"],
)
def test_a_bad_spec_is_the_same_422_as_at_submit(client: TestClient, bad: dict) -> None:
    submitted = client.post("/v1/experiments", json=bad)
    previewed = client.post("/v1/experiments/preview", json=bad)
    assert submitted.status_code == previewed.status_code == 422, previewed.text
    assert previewed.headers["content-type"].startswith("application/problem+json")
    strip = ("instance", "request_id")
    assert {k: v for k, v in previewed.json().items() if k not in strip} == {
        k: v for k, v in submitted.json().items() if k not in strip
    }


def test_a_server_limit_is_the_same_422_as_at_submit(client: TestClient) -> None:
    spec = _spec(training={"epochs": 3, "max_steps": 20_000_000})
    submitted, previewed = (
        client.post(path, json=spec) for path in ("/v1/experiments", "/v1/experiments/preview")
    )
    assert submitted.status_code == previewed.status_code == 422
    assert previewed.json()["setting"] == submitted.json()["setting"] == "ACTLAB_MAX_STEPS"


def test_bad_query_parameters(client: TestClient) -> None:
    for params in ({"steps": "some"}, {"max_points": 0}, {"format": "csv"}):
        response = client.post("/v1/experiments/preview", json=_spec(), params=params)
        assert response.status_code == 422, params


def test_a_schedule_past_the_float_range_is_a_422_not_a_null(client: TestClient) -> None:
    """rate**t overflows: JSON has no inf, so the preview refuses instead of sending null."""
    kind = client.get(
        "/v1/schedules/exponential/preview", params={"rate": 621102.0, "points": 50, "total": 30000}
    )
    assert kind.status_code == 422 and "query.rate" in kind.text
    spec = canonical_spec(noise_schedule={"kind": "exponential", "params": {"rate": 1e6}})
    response = client.post("/v1/experiments/preview", json=spec)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["path"] == "noise_schedule"
