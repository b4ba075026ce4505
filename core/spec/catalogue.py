"""Catalogue rows of the dataset and model registrations, plugins included.

Parameters come from each spec class's JSON schema (ranges, defaults, descriptions), the
description from its docstring, shapes and classes from its default instance.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from core.spec.datasets import DATASETS
from core.spec.models import MODELS
from core.spec.registry import SpecRegistry


def fields(model: type[BaseModel], skip: str) -> list[dict[str, Any]]:
    """Each field of a spec class: name, type, default, range, description."""
    schema = model.model_json_schema()
    out = []
    for name, prop in schema.get("properties", {}).items():
        if name == skip:
            continue
        out.append(
            {
                "name": name,
                "type": prop.get("type") or "object",
                "default": _default(model, name),
                "min": prop.get("minimum", prop.get("exclusiveMinimum")),
                "max": prop.get("maximum", prop.get("exclusiveMaximum")),
                "min_open": "exclusiveMinimum" in prop,
                "max_open": "exclusiveMaximum" in prop,
                "description": prop.get("description"),
            }
        )
    return out


def _default(model: type[BaseModel], name: str) -> Any:
    value = model.model_fields[name].get_default(call_default_factory=True)
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def _rows(registry: SpecRegistry[Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "description": " ".join((cls.__doc__ or "").split()),
            "source": registry.source(name),
            "params": fields(cls, registry.key),
        }
        for name, cls in zip(registry.names(), registry.classes(), strict=True)
    ]


def datasets() -> list[dict[str, Any]]:
    """Every dataset: description, source, task, default input shape, classes, parameters."""
    rows = _rows(DATASETS)
    for row in rows:
        info = DATASETS.get(row["name"]).model_validate({"name": row["name"]}).info()
        row.update(task=info.task, input_shape=list(info.input_shape), classes=info.num_classes)
    return rows


def models() -> list[dict[str, Any]]:
    """Every model architecture: description, source and parameters."""
    return _rows(MODELS)
