"""Probes of an outside tester: each is a 4xx naming the field, the same on SQLite and Postgres.

Run on Postgres with ACTLAB_TEST_DATABASE_URL set; the answers must not differ.
"""

from __future__ import annotations

import json
import re

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from service.strict_json import MAX_DEPTH
from tests.support import canonical_spec

SPEC = json.dumps(canonical_spec())


def _with(section: str, text: str) -> str:
    """The canonical spec with `section` replaced by raw JSON text (which may be non-strict)."""
    body = canonical_spec()
    body[section] = "@@"
    return json.dumps(body).replace('"@@"', text)


def _sweep(tags_text: str) -> str:
    base = {k: v for k, v in canonical_spec().items() if k not in ("name", "seed")}
    body = {"name": "s", "base_spec": base, "grid": {}, "seeds": [0], "tags": "@@"}
    return json.dumps(body).replace('"@@"', tags_text)


PROBES = {
    "lone surrogate in tags": ("/v1/experiments", _with("tags", '["\\udfff"]'), "tags[0]"),
    "lone surrogate in early_stopping.metric": (
        "/v1/experiments",
        _with("training", '{"early_stopping": {"metric": "\\ud800"}}'),
        "training.early_stopping.metric",
    ),
    "lone surrogate in sweep tags": ("/v1/sweeps", _sweep('["\\udfff"]'), "tags[0]"),
    "data_seed 2^40": (
        "/v1/experiments",
        _with("dataset", '{"name": "mnist1d", "data_seed": 1099511627776}'),
        "dataset.data_seed",
    ),
    "noise warmup 1e18": (
        "/v1/experiments",
        _with("noise_schedule", '{"kind": "cosine", "warmup": 1000000000000000000}'),
        "noise_schedule.warmup",
    ),
    "lr warmup 1e18": (
        "/v1/experiments",
        _with("optimizer", '{"lr_schedule": {"kind": "constant", "warmup": 1e18}}'),
        "optimizer.lr_schedule.warmup",
    ),
    "unknown early_stopping metric": (
        "/v1/experiments",
        _with("training", '{"early_stopping": {"metric": "val/nope"}}'),
        "training.early_stopping.metric",
    ),
    "Infinity time_limit_s": (
        "/v1/experiments",
        _with("training", '{"time_limit_s": Infinity}'),
        "training.time_limit_s",
    ),
    "Infinity min_delta": (
        "/v1/experiments",
        _with("training", '{"early_stopping": {"min_delta": Infinity}}'),
        "training.early_stopping.min_delta",
    ),
    "-Infinity checkpoint_interval_s": (
        "/v1/experiments",
        _with("training", '{"checkpoint_interval_s": -Infinity}'),
        "training.checkpoint_interval_s",
    ),
    "NaN lr": ("/v1/experiments", _with("optimizer", '{"lr": NaN}'), "optimizer.lr"),
    "1e400 lr": ("/v1/experiments", _with("optimizer", '{"lr": 1e400}'), "optimizer.lr"),
    "duplicate key": ("/v1/experiments", SPEC[:-1] + ', "seed": 1}', "seed"),
    "duplicate nested key": (
        "/v1/experiments",
        _with("optimizer", '{"lr": 0.1, "lr": 0.2}'),
        "optimizer.lr",
    ),
}


@pytest.mark.parametrize("probe", list(PROBES))
def test_probe_is_a_422_naming_the_field(client: TestClient, probe: str) -> None:
    path, body, field = PROBES[probe]
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["errors"][0]["path"] == field or field in problem["detail"], problem
    assert client.get("/v1/experiments").json()["items"] == []  # nothing was stored


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/experiments", "activation"),
        ("/v1/experiments", "tag"),
        ("/v1/experiments", "sweep_id"),
        ("/v1/metrics/series", "name"),
    ],
)
def test_nul_in_a_get_filter_is_a_422_naming_the_parameter(
    client: TestClient, path: str, param: str
) -> None:
    params = {param: "a\x00b"}
    if path == "/v1/metrics/series":
        params["sweep_id"] = "swp_x"
    response = client.get(path, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["path"] == f"query.{param}"


def test_a_json_syntax_error_gives_line_and_column(client: TestClient) -> None:
    body = '{\n  "name": "x",\n  "seed": ,\n}'
    response = client.post(
        "/v1/experiments", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "line 3, column 11" in response.json()["detail"]


def test_a_valid_spec_still_passes_the_strict_parser(client: TestClient) -> None:
    response = client.post(
        "/v1/experiments", content=SPEC, headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text


def test_val_early_stopping_without_a_validation_split_is_refused(client: TestClient) -> None:
    spec = canonical_spec(
        dataset={"name": "mnist1d", "val_fraction": 0.0},
        training={"early_stopping": {"metric": "val/acc", "mode": "max"}},
    )
    response = client.post("/v1/experiments", json=spec)
    assert response.status_code == 422
    assert "training.early_stopping.metric" in response.json()["detail"]


def test_a_negative_train_eval_size_is_a_422_naming_the_field(client: TestClient) -> None:
    response = client.post("/v1/experiments", json=canonical_spec(training={"train_eval_size": -1}))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["path"] == "training.train_eval_size", response.json()


def test_train_early_stopping_without_train_scores_is_refused(client: TestClient) -> None:
    spec = canonical_spec(
        training={"train_eval_size": 0, "early_stopping": {"metric": "train/loss"}}
    )
    response = client.post("/v1/experiments", json=spec)
    assert response.status_code == 422
    assert "training.train_eval_size is 0" in response.json()["detail"]
    ok = canonical_spec(training={"train_eval_size": 0, "early_stopping": {"metric": "val/loss"}})
    assert client.post("/v1/experiments", json=ok).status_code == 201


def test_a_run_too_big_for_memory_is_a_422_with_the_estimate_and_its_parts(
    client: TestClient,
) -> None:
    spec = {
        "dataset": {"name": "adding", "seq_len": 2000, "num_samples": 1_000_000},
        "model": {"arch": "mlp", "hidden": [16]},
        "activation": {"name": "relu"},
    }
    response = client.post("/v1/experiments", json=spec)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["setting"] == "ACTLAB_MAX_MEMORY_BYTES"
    assert problem["parts"]["data"] == 1_000_000 * (2000 * 2 * 4 + 4)  # 14.9 GiB of inputs
    assert problem["estimate_bytes"] == sum(problem["parts"].values()) > problem["limit"]
    assert "ACTLAB_MAX_MEMORY_BYTES" in problem["detail"] and "GiB" in problem["detail"]
    sweep = {"name": "big", "base_spec": spec, "grid": {}, "seeds": [0]}
    assert client.post("/v1/sweeps", json=sweep).json()["setting"] == "ACTLAB_MAX_MEMORY_BYTES"


@pytest.mark.parametrize("tag", ["", "x" * 65])
def test_the_tag_rule_is_the_same_in_the_schema_and_on_both_endpoints(
    client: TestClient, tag: str
) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("ExperimentSpec", "SweepCreate"):
        items = schemas[name]["properties"]["tags"]["items"]
        assert (items["minLength"], items["maxLength"]) == (1, 64), name
    spec = canonical_spec(tags=[tag])
    response = client.post("/v1/experiments", json=spec)
    assert response.status_code == 422 and response.json()["errors"][0]["path"] == "tags[0]"
    base = {k: v for k, v in canonical_spec().items() if k not in ("name", "seed")}
    sweep = {"name": "s", "base_spec": base, "grid": {}, "seeds": [0], "tags": [tag]}
    response = client.post("/v1/sweeps", json=sweep)
    assert response.status_code == 422 and response.json()["errors"][0]["path"] == "tags[0]"


@pytest.mark.parametrize(
    ("params", "leaf"),
    [({"sigma": "x"}, "activation.params.sigma"), ({"nope": 1}, "activation.params.nope")],
)
def test_a_bad_activation_param_is_named_down_to_the_leaf(
    client: TestClient, params: dict[str, object], leaf: str
) -> None:
    spec = canonical_spec(activation={"name": "noisy_relu", "params": params})
    response = client.post("/v1/experiments", json=spec)
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == leaf, response.json()


def _body_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route of `app` that takes a body, path parameters filled in:
    a route added later is probed without anyone listing it here."""
    found = sorted(
        (method, re.sub(r"\{[^}]*\}", "x", context.path))
        for context in iter_route_contexts(app.routes)
        if context.path
        for method in set(context.methods or ()) & {"POST", "PUT", "PATCH"}
    )
    assert ("POST", "/v1/experiments") in found and ("POST", "/v1/sweeps") in found, found
    return found


DEEP = f"deeper than {MAX_DEPTH} levels"
# Bodies that once raised out of the strict JSON check (a 500 and a reset connection), each
# with what its 422 must say.
HOSTILE_BODIES = {
    "deep arrays": ("[" * 2000 + "]" * 2000, DEEP),
    "deep objects": ('{"a": ' * 2000 + "1" + "}" * 2000, DEEP),
    "deep mixed": ('[{"a": ' * 1000 + "1" + "}]" * 1000, DEEP),
    "one level over": ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), DEEP),
    "a 5000-digit integer": ('{"seed": ' + "7" * 5000 + "}", "seed: an integer of 5000 digits"),
}


@pytest.mark.parametrize("shape", list(HOSTILE_BODIES))
def test_hostile_json_is_a_422_naming_the_problem_on_every_body_route(
    client: TestClient, shape: str
) -> None:
    body, expected = HOSTILE_BODIES[shape]
    wrong = {}
    for method, path in _body_routes(client.app):
        for media in ("application/json", "application/merge-patch+json; charset=utf-8"):
            response = client.request(method, path, content=body, headers={"content-type": media})
            if not (
                response.status_code == 422
                and response.headers["content-type"] == "application/problem+json"
                and expected in response.json()["detail"]
            ):
                wrong[f"{method} {path} ({media})"] = (response.status_code, response.text[:200])
    assert wrong == {}


def test_nesting_at_the_limit_passes_the_strict_parser(client: TestClient) -> None:
    """MAX_DEPTH levels are read and validated as usual: the field is named, not the depth."""
    tags = "[" * (MAX_DEPTH - 1) + '"t"' + "]" * (MAX_DEPTH - 1)
    response = client.post(
        "/v1/experiments", content=_with("tags", tags), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert "levels" not in response.json()["detail"]
    assert response.json()["errors"][0]["path"].startswith("tags")
