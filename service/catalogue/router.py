"""The catalogue: what can be put in a spec, straight from the registries and spec schemas."""

from __future__ import annotations

import math
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ValidationError

import activations
from activations import noise, schedules
from core.spec import catalogue, plugins
from core.spec.activation import ScheduleSpec
from service.auth import PrincipalDep
from service.errors import InvalidSpec, not_finite

router = APIRouter(prefix="/v1", tags=["catalogue"])
ScheduleKind = Enum("ScheduleKind", {name: name for name in schedules.names()}, type=str)  # type: ignore[misc]


@router.get("/activations")
def list_activations() -> list[dict[str, Any]]:
    """Every registered unit: aliases, description, source (builtin or the plugin's
    distribution), parameters with defaults and ranges."""
    return [
        {**row, "source": plugins.source("activation", row["name"])}
        for row in activations.catalogue()
    ]


# What a key that is not an admin's reads as a failed plugin's `error`.
HIDDEN_ERROR = "failed to load (an admin key shows why)"


@router.get("/plugins")
def list_plugins(principal: PrincipalDep) -> list[dict[str, Any]]:
    """Every plugin entry point found at start-up: what it registers, from which
    distribution, and `error` when it was skipped (failed import, name taken, bad params).

    With auth on this needs a key, and only an admin's key reads why a plugin failed: the
    error text is the plugin's own exception message, which may name server paths or
    settings."""
    return [_as_seen_by(p.as_dict(), principal.admin) for p in plugins.loaded()]


def _as_seen_by(plugin: dict[str, Any], admin: bool) -> dict[str, Any]:
    if plugin["error"] is None or admin:
        return plugin
    return {**plugin, "error": HIDDEN_ERROR}


@router.get("/schedules")
def list_schedules() -> list[dict[str, Any]]:
    """Every schedule kind with its parameters (noise and learning-rate multipliers)."""
    return schedules.catalogue()


@router.get("/noise-laws")
def list_noise_laws() -> list[dict[str, Any]]:
    """Every noise law a noisy unit may draw (its `distribution` or `noise` param): aliases,
    mean and std of the unit law, whether a fused CUDA kernel draws it."""
    return [row.as_dict() for row in noise.laws()]


@router.get("/datasets")
def list_datasets() -> list[dict[str, Any]]:
    """Every data set a spec may name, with its options."""
    return catalogue.datasets()


@router.get("/models")
def list_models() -> list[dict[str, Any]]:
    """Every model architecture a spec may name, with its options."""
    return catalogue.models()


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
    values = []
    for t, v in schedule.preview(points, total=total):
        if not math.isfinite(v):
            raise not_finite("query.rate", t, v)
        values.append(SchedulePoint(t=t, value=v))
    horizon = int(values[-1].t) if values else 0
    return SchedulePreview(kind=spec.kind, total=horizon, points=values)
