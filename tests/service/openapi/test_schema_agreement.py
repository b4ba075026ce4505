"""Requests where the schema and validation used to disagree, answered alike on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import canonical_spec


def _sweep(**overrides: Any) -> dict[str, Any]:
    base = {k: v for k, v in canonical_spec().items() if k not in ("name", "seed")}
    return {"name": "s", "base_spec": base, "grid": {}, "seeds": [0], **overrides}


def _path(response: Any) -> str:
    body = response.json()
    assert response.status_code == 422, body
    return str(body["errors"][0]["path"])


def test_whole_number_floats_are_integers(client: TestClient) -> None:
    # JSON Schema (and so the OpenAPI schema) calls 0.0 an integer: so does validation.
    spec = canonical_spec(seed=3.0, training={"epochs": 2.0})
    created = client.post("/v1/experiments", json=spec)
    assert created.status_code == 201, created.json()
    stored = client.get(f"/v1/experiments/{created.json()['id']}").json()["spec"]
    assert stored["seed"] == 3 and isinstance(stored["seed"], int)
    assert stored["training"]["epochs"] == 2
    sweep = client.post("/v1/sweeps", json=_sweep(seeds=[0.0, 1.0]))
    assert sweep.status_code == 201, sweep.json()
    assert sweep.json()["seeds"] == [0, 1]


def test_fractional_floats_are_not(client: TestClient) -> None:
    assert _path(client.post("/v1/experiments", json=canonical_spec(seed=0.5))) == "seed"
    assert _path(client.post("/v1/sweeps", json=_sweep(seeds=[1.5]))) == "seeds[0]"


def test_an_integer_unit_param_takes_a_whole_float(client: TestClient) -> None:
    spec = canonical_spec(activation={"name": "prelu", "params": {"num_parameters": 1.0}})
    created = client.post("/v1/experiments", json=spec)
    assert created.status_code == 201, created.json()
    assert created.json()["spec"]["activation"]["params"]["num_parameters"] == 1


@pytest.mark.parametrize("tags", [[""], ["x" * 65]])
def test_sweep_tags_follow_the_schema(client: TestClient, tags: list[str]) -> None:
    assert _path(client.post("/v1/sweeps", json=_sweep(tags=tags))) == "tags[0]"
    assert _path(client.post("/v1/experiments", json=canonical_spec(tags=tags))) == "tags[0]"


def test_null_is_refused_where_the_default_is_not_null(client: TestClient) -> None:
    spec = canonical_spec(activation={"name": "noisy_relu", "params": {"sigma": None}})
    assert _path(client.post("/v1/experiments", json=spec)) == "activation.params.sigma"
    unset = canonical_spec(activation={"name": "noisy_relu", "params": {"num_channels": None}})
    assert client.post("/v1/experiments", json=unset).status_code == 201


def test_schedule_params_hold_only_the_kinds_own(client: TestClient) -> None:
    spec = canonical_spec(noise_schedule={"kind": "cosine", "params": {"total": 5}})
    assert _path(client.post("/v1/experiments", json=spec)) == "noise_schedule.params.total"


def test_a_size_param_must_fit_the_layer(client: TestClient) -> None:
    # It was a 500: the memory estimate's model build raised inside PReLU.
    spec = canonical_spec(activation={"name": "prelu", "params": {"num_parameters": 2}})
    response = client.post("/v1/experiments", json=spec)
    assert _path(response) == "activation.params.num_parameters"
    assert "layer width 100" in response.json()["detail"]


def test_a_noisy_gate_on_a_recurrent_model_is_estimated(client: TestClient) -> None:
    # It was a 500: the estimate's meta-device forward asked for a generator's state.
    spec = canonical_spec(dataset={"name": "adding", "seq_len": 10, "num_samples": 100})
    spec["activation"] = {"name": "nani_hard_tanh"}
    spec["model"] = {"arch": "gru", "hidden_size": 8, "gate_activation": {"name": "nani_relu"}}
    spec["training"]["best_metric"] = "val/loss"
    assert client.post("/v1/experiments", json=spec).status_code == 201


@pytest.mark.parametrize("value", ["abc", "1-x", "\u00b2", "1" * 19, "1 2"])
def test_a_malformed_last_event_id_is_a_422(client: TestClient, value: str) -> None:
    exp = client.post("/v1/experiments", json=canonical_spec()).json()
    response = client.get(
        f"/v1/experiments/{exp['id']}/events",
        params={"stream": "true"},
        headers={"Last-Event-ID": value.encode()},
    )
    assert response.status_code == 422
    assert "last-event-id" in response.text.lower()


def test_weights_of_an_unfinished_experiment_are_a_409(client: TestClient) -> None:
    exp = client.post("/v1/experiments", json=canonical_spec()).json()
    response = client.get(f"/v1/experiments/{exp['id']}/weights")
    assert response.status_code == 409
    assert "status queued" in response.json()["detail"]
    assert client.get("/v1/experiments/exp_nope/weights").status_code == 404
