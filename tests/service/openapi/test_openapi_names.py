"""The OpenAPI schema's names and unit params come from the registries, and match validation.

Each case below is judged twice, by the served schema (jsonschema, Draft 2020-12, as
schemathesis does) and by the API's own validation; the verdicts must agree, except for the
rules between parameters that JSON Schema cannot state (docs/openapi.md lists them).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from torch import nn

import activations
from activations import Param, schedules
from activations.registry import unregister
from core.settings import Settings
from core.spec import ActivationSpec, ScheduleSpec
from service.app import create_app


def _refused_by_a_rule_between_params(name: str, params: dict[str, Any]) -> bool:
    """The unit's check_params rules, which compare params (JSON Schema cannot)."""
    full = {p.name: p.default for p in activations.registry.entry(name).params} | params
    if name == "rrelu":
        return isinstance(full["lower"], float | int) and full["lower"] > full["upper"]
    if name == "noisy_relu":
        return full["learn_sigma"] is True and full["sigma"] <= 0
    return False


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app(Settings(database_url="sqlite://", auth_enabled=False)).openapi()


def _schema_says(openapi: dict[str, Any], component: str, instance: Any) -> bool:
    root = {"$ref": f"#/components/schemas/{component}", "components": openapi["components"]}
    return jsonschema.Draft202012Validator(root).is_valid(instance)


def _validation_says(model: type[ActivationSpec | ScheduleSpec], instance: Any) -> bool:
    try:
        model.model_validate(copy.deepcopy(instance))
    except ValidationError:
        return False
    return True


def _values(param: Param) -> Iterator[Any]:
    """Edge values of one declared param: bounds, just past them, wrong types, null."""
    yield from (None, "x", True, [], 1.5, 2, 2.0)
    for bound in (param.min, param.max):
        if bound is not None:
            yield from (bound, bound - 0.5, bound + 0.5, bound - 1, bound + 1)
    yield from param.choices or ()


def test_every_registered_unit_is_a_variant_with_its_aliases(openapi: dict[str, Any]) -> None:
    union = openapi["components"]["schemas"]["ActivationSpec"]
    mapping = union["discriminator"]["mapping"]
    assert union["discriminator"]["propertyName"] == "name"
    for name in activations.names():
        entry = activations.registry.entry(name)
        assert {name, *entry.aliases} <= set(mapping), name
        variant = openapi["components"]["schemas"][mapping[name].rsplit("/", 1)[1]]
        assert variant["properties"]["name"]["enum"] == [name, *entry.aliases]
        assert set(variant["properties"]["params"]["properties"]) == {p.name for p in entry.params}
    assert len(union["oneOf"]) == len(activations.names())


@pytest.mark.parametrize("name", activations.names())
def test_schema_and_validation_agree_on_each_param(openapi: dict[str, Any], name: str) -> None:
    disagreements = []
    for param in activations.registry.entry(name).params:
        for value in _values(param):
            body = {"name": name, "params": {param.name: value}}
            schema = _schema_says(openapi, "ActivationSpec", body)
            valid = _validation_says(ActivationSpec, body)
            explained = schema and _refused_by_a_rule_between_params(name, body["params"])
            if schema != valid and not explained:
                disagreements.append((param.name, value, f"schema {schema}, validation {valid}"))
    unknown = {"name": name, "params": {"no_such_param": 1}}
    assert not _schema_says(openapi, "ActivationSpec", unknown)
    assert not _validation_says(ActivationSpec, unknown)
    assert disagreements == []


def test_names_agree_exactly(openapi: dict[str, Any]) -> None:
    for name in ("relu", "lrelu", "ReLU", "Leaky-ReLU", " relu", "swishy", ""):
        body = {"name": name}
        verdicts = (
            _schema_says(openapi, "ActivationSpec", body),
            _validation_says(ActivationSpec, body),
        )
        assert verdicts[0] == verdicts[1], (name, verdicts)
    assert _validation_says(ActivationSpec, {"name": "lrelu"})
    assert not _validation_says(ActivationSpec, {"name": "ReLU"})


@pytest.mark.parametrize("kind", schedules.names())
def test_schedule_variants_agree_with_validation(openapi: dict[str, Any], kind: str) -> None:
    cases: list[dict[str, Any]] = [
        {"kind": kind, "start": 0.5, "end": 0.25},
        {"kind": kind, "params": {"start": 2.0}},  # a common field is not a kind param
        {"kind": kind, "warmup": 3.0},
        {"kind": kind, "warmup": 3.5},
    ]
    for param in schedules.extra_params(kind):
        cases += [{"kind": kind, "params": {param.name: v}} for v in _values(param)]
    for body in cases:
        verdicts = (
            _schema_says(openapi, "ScheduleSpec", body),
            _validation_says(ScheduleSpec, body),
        )
        geometric = kind == "exponential" and body.get("params", {}).get("rate") is None
        if geometric and verdicts == (True, False):
            # Without rate, start and end must be > 0: a rule between fields.
            assert min(body.get("start", 1.0), body.get("end", 0.0)) <= 0
            continue
        assert verdicts[0] == verdicts[1], (body, verdicts)
    assert _schema_says(openapi, "ScheduleSpec", {}) and _validation_says(ScheduleSpec, {})


def test_a_unit_registered_later_appears_in_the_schema() -> None:
    # A plugin registers after `activations` is imported; the app's schema still lists it.
    @activations.register(
        "test_plugin_unit",
        description="A plugin's unit.",
        reference="tests",
        params=(Param("k", "int", 2, 1, 8, required=False),),
    )
    class PluginUnit(nn.Module):
        def __init__(self, k: int) -> None:
            super().__init__()
            self.k = k

    try:
        openapi = create_app(Settings(database_url="sqlite://", auth_enabled=False)).openapi()
        body = {"name": "test_plugin_unit", "params": {"k": 9}}
        assert "ActivationTestPluginUnit" in openapi["components"]["schemas"]
        assert not _schema_says(openapi, "ActivationSpec", body)
        assert not _validation_says(ActivationSpec, body)
        body["params"]["k"] = 8.0  # a whole-number float is an integer, for both
        assert _schema_says(openapi, "ActivationSpec", body)
        assert _validation_says(ActivationSpec, body)
    finally:
        unregister("test_plugin_unit")


def test_unknown_names_list_the_valid_ones(client: TestClient) -> None:
    body = {
        "dataset": {"name": "moons"},
        "model": {"arch": "mlp", "hidden": [8]},
        "activation": {"name": "ReLU"},
    }
    problem = client.post("/v1/experiments", json=body).json()
    assert problem["status"] == 422
    assert problem["errors"][0]["path"] == "activation.name"
    assert "relu" in problem["detail"] and "noisy_relu" in problem["detail"]
