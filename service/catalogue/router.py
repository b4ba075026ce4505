"""The catalogue: what can be put in a spec, straight from the registries and spec schemas."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ValidationError

import activations
from activations import schedules
from service.errors import InvalidSpec
from service.spec.activation import ScheduleSpec
from service.spec.datasets import DATASET_SPECS
from service.spec.models import MODEL_SPECS

router = APIRouter(prefix="/v1", tags=["catalogue"])
ScheduleKind = Enum("ScheduleKind", {name: name for name in schedules.names()}, type=str)  # type: ignore[misc]


def _fields(model: type[BaseModel], skip: str) -> list[dict[str, Any]]:
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


def _entries(specs: dict[str, type[BaseModel]], key: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "description": (cls.__doc__ or "").strip(), "params": _fields(cls, key)}
        for name, cls in specs.items()
    ]


@router.get("/activations")
def list_activations() -> list[dict[str, Any]]:
    """Every registered unit: aliases, description, parameters with defaults and ranges."""
    return activations.catalogue()


@router.get("/schedules")
def list_schedules() -> list[dict[str, Any]]:
    """Every schedule kind with its parameters (noise and learning-rate multipliers)."""
    return schedules.catalogue()


@router.get("/datasets")
def list_datasets() -> list[dict[str, Any]]:
    """Every data set a spec may name, with its options."""
    return _entries(DATASET_SPECS, "name")  # type: ignore[arg-type]


@router.get("/models")
def list_models() -> list[dict[str, Any]]:
    """Every model architecture a spec may name, with its options."""
    return _entries(MODEL_SPECS, "arch")  # type: ignore[arg-type]


class SchedulePoint(BaseModel):
    t: float
    value: float


class SchedulePreview(BaseModel):
    kind: str
    total: int
    points: list[SchedulePoint]


@router.get("/schedules/{kind}/preview", response_model=SchedulePreview)
def preview_schedule(
    kind: ScheduleKind,  # type: ignore[valid-type]
    total: Annotated[
        int | None,
        Query(ge=1, le=10_000_000, description="Horizon (steps/epochs); where the kind uses it."),
    ] = None,
    points: Annotated[int, Query(ge=2, le=10_000)] = 100,
    start: Annotated[float, Query(ge=0, le=1e6)] = 1.0,
    end: Annotated[float, Query(ge=0, le=1e6)] = 0.0,
    warmup: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    rate: Annotated[float | None, Query(gt=0, le=1e6, description="exponential")] = None,
    step_size: Annotated[int | None, Query(ge=1, le=10_000_000, description="step")] = None,
    gamma: Annotated[float | None, Query(ge=0, le=1e6, description="step")] = None,
) -> Any:
    """The schedule's value at `points` evenly spaced positions of a `total`-long run.

    Every parameter of the kind is honoured (`rate`; `step_size`, `gamma`); one the kind does
    not take is a 422. Without `total` (for kinds that ignore it) the horizon is 10 warmups.
    """
    given = {"rate": rate, "step_size": step_size, "gamma": gamma}
    params = {k: v for k, v in given.items() if v is not None}
    try:
        spec = ScheduleSpec(kind=kind.value, start=start, end=end, warmup=warmup, params=params)
        built = spec.build_params(total=total)  # type: ignore[arg-type]
        schedule = schedules.create(spec.kind, **built)
    except ValidationError as exc:
        detail = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise InvalidSpec(detail) from None
    except ValueError as exc:
        raise InvalidSpec(str(exc)) from None
    values = [SchedulePoint(t=t, value=v) for t, v in schedule.preview(points, total=total)]
    horizon = int(values[-1].t) if values else 0
    return SchedulePreview(kind=spec.kind, total=horizon, points=values)
