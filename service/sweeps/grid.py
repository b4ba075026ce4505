"""A sweep's grid: its points and labels, and each point's experiment specs."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from pydantic import ValidationError

from core.spec import ExperimentSpec
from core.spec import points as points_
from core.spec.paths import field_errors
from core.spec.points import Point, drop_foreign_params, experiment_name, label, set_path
from service.errors import InvalidSpec
from service.sweeps.schemas import SweepCreate

__all__ = [
    "Point",
    "dropped_params",
    "expand",
    "experiment_name",
    "label",
    "point_errors",
    "point_spec",
    "points",
]


def points(grid: dict[str, list[Any]]) -> list[Point]:
    """Every combination of the grid's values, first path slowest; {} for an empty grid."""
    paths = list(grid)
    return [dict(zip(paths, combo, strict=True)) for combo in itertools.product(*grid.values())]


def point_spec(body: SweepCreate, index: int, point: Point, seed: int) -> dict[str, Any]:
    """The spec document of one experiment: base spec, grid values, seed, name and tags."""
    return points_.point_spec(
        body.base_spec, sweep_name=body.name, tags=body.tags, index=index, point=point, seed=seed
    )


def point_errors(where: str, spec: dict[str, Any] | None, exc: Exception) -> list[dict]:
    if not isinstance(exc, ValidationError):
        return [{"path": where, "message": str(exc), "type": "value_error"}]
    return field_errors(exc.errors(), spec, within=where)


def expand(body: SweepCreate) -> list[tuple[Point, list[ExperimentSpec]]]:
    """Every point with its validated specs, one per seed; InvalidSpec names each bad point."""
    out: list[tuple[Point, list[ExperimentSpec]]] = []
    errors: list[dict] = []
    for index, point in enumerate(points(body.grid)):
        where = f"grid[{label(point)}]" if point else "base_spec"
        spec: dict[str, Any] | None = None
        try:
            specs = []
            for seed in body.seeds or []:
                spec = point_spec(body, index, point, seed)
                specs.append(ExperimentSpec.model_validate(spec))
        except (ValidationError, ValueError) as exc:
            errors.extend(point_errors(where, spec, exc))
            continue
        out.append((point, specs))
    if errors:
        detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:5])
        raise InvalidSpec(detail, errors=errors)
    return out


def dropped_params(base_spec: dict[str, Any], point: Point) -> list[str]:
    """The base spec's params that this point's unit or schedule kind does not take."""
    spec = copy.deepcopy(base_spec)
    try:
        for path, value in point.items():
            set_path(spec, path, value)
    except ValueError:
        return []
    before = {
        f"{section}.params.{k}"
        for section in ("activation", "noise_schedule")
        for k in ((spec.get(section) or {}).get("params") or {})
    }
    drop_foreign_params(spec, point)
    after = {
        f"{section}.params.{k}"
        for section in ("activation", "noise_schedule")
        for k in ((spec.get(section) or {}).get("params") or {})
    }
    return sorted(before - after)
