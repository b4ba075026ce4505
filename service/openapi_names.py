"""The OpenAPI schema's registry-backed parts: activation and schedule names and their params.

Pydantic sees `ActivationSpec.name` as a string and `params` as a free object, because the
valid names and each unit's parameters live in registries that plugins may extend. The
schema is completed from those registries when it is first generated (after every plugin
has registered), so that it says exactly what validation accepts: one variant per unit,
discriminated by `name` (canonical name or an alias), whose `params` lists that unit's
parameters with their types, ranges, defaults and required ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI

import activations
from activations import schedules
from activations.params import Param

_JSON_TYPES = {"float": "number", "int": "integer", "bool": "boolean", "str": "string"}
_REF = "#/components/schemas/"
NO_NUL = "^[^\\x00]*$"


def install(app: FastAPI) -> None:
    """Complete `app`'s schema from the registries once, when it is first asked for."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            complete(generate())  # FastAPI caches the dict it returns in app.openapi_schema
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def complete(openapi: dict[str, Any]) -> dict[str, Any]:
    """Replace the spec components that pydantic left open with the registries' variants."""
    components = openapi.get("components", {}).get("schemas", {})
    if "ActivationSpec" in components:
        components.update(activation_components())
    if "ScheduleSpec" in components:
        components.update(schedule_components(components["ScheduleSpec"]))
    for item in openapi.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    _no_nul(parameter.get("schema", {}))
    return openapi


def _no_nul(schema: dict[str, Any]) -> None:
    """A NUL in any query parameter is a 422 (service/strict_json.py): say so in the schema."""
    if schema.get("type") == "string" and "pattern" not in schema and "enum" not in schema:
        schema["pattern"] = NO_NUL
    for branch in schema.get("anyOf", []):
        _no_nul(branch)
    if isinstance(schema.get("items"), dict):
        _no_nul(schema["items"])


def param_schema(param: Param) -> dict[str, Any]:
    """JSON Schema of one declared parameter; null is allowed only where null is the default."""
    schema: dict[str, Any] = {"type": _JSON_TYPES[param.type]}
    if param.choices is not None:
        schema["enum"] = list(param.choices)
    if param.min is not None:
        schema["exclusiveMinimum" if param.min_open else "minimum"] = param.min
    if param.max is not None:
        schema["exclusiveMaximum" if param.max_open else "maximum"] = param.max
    if param.default is None and not param.required:
        schema = {"anyOf": [schema, {"type": "null"}]}
    if param.description:
        schema["description"] = param.description
    if not param.required:
        schema["default"] = param.default
    return schema


def params_object(params: Iterable[Param], description: str) -> dict[str, Any]:
    """An object of exactly these params (unknown keys are refused, as validation does)."""
    params = tuple(params)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {p.name: param_schema(p) for p in params},
        "additionalProperties": False,
        "description": description,
    }
    required = [p.name for p in params if p.required]
    if required:
        schema["required"] = required
    else:
        schema["default"] = {}
    return schema


def _variant_name(prefix: str, name: str) -> str:
    return prefix + "".join(part.capitalize() for part in name.split("_"))


def activation_components() -> dict[str, dict[str, Any]]:
    """`ActivationSpec` as a oneOf over registered units, plus one component per unit."""
    variants: dict[str, dict[str, Any]] = {}
    mapping: dict[str, str] = {}
    for name in activations.names():
        entry = activations.registry.entry(name)
        component = _variant_name("Activation", name)
        names = [name, *entry.aliases]
        params = params_object(entry.params, f"Parameters of {name}.")
        variants[component] = {
            "title": component,
            "description": entry.description,
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": names, "description": "Name or alias."},
                "params": params,
            },
            "required": ["name", "params"] if "required" in params else ["name"],
            "additionalProperties": False,
        }
        mapping.update({n: _REF + component for n in names})
    union = {
        "title": "ActivationSpec",
        "description": "A registered activation unit (GET /v1/activations) and its parameters.",
        "oneOf": [{"$ref": _REF + c} for c in variants],
        "discriminator": {"propertyName": "name", "mapping": mapping},
        "examples": [{"name": "noisy_relu", "params": {"sigma": 0.3}}],
    }
    return {"ActivationSpec": union, **variants}


def schedule_components(base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`ScheduleSpec` as a oneOf over schedule kinds; a missing `kind` is `constant`."""
    common = {k: v for k, v in base.get("properties", {}).items() if k not in ("kind", "params")}
    variants: dict[str, dict[str, Any]] = {}
    for kind in schedules.names():
        component = _variant_name("Schedule", kind)
        kind_schema: dict[str, Any] = {"type": "string", "const": kind}
        if kind == "constant":
            kind_schema["default"] = "constant"
        variants[component] = {
            "title": component,
            "type": "object",
            "properties": {
                "kind": kind_schema,
                **common,
                "params": params_object(schedules.extra_params(kind), f"Parameters of {kind}."),
            },
            "required": [] if kind == "constant" else ["kind"],
            "additionalProperties": False,
        }
        if not variants[component]["required"]:
            del variants[component]["required"]
    union = {
        "title": "ScheduleSpec",
        "description": base.get("description", ""),
        "oneOf": [{"$ref": _REF + c} for c in variants],
    }
    return {"ScheduleSpec": union, **variants}
