"""A sweep's grid: its points and labels, and each point's experiment specs."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

from pydantic import ValidationError

import activations
from activations import schedules
from core.spec import ExperimentSpec
from core.spec.paths import field_errors
from service.errors import InvalidSpec
from service.sweeps.schemas import SweepCreate, canonical

Point = dict[str, Any]
NAME_MAX = 200  # Experiment.name


def points(grid: dict[str, list[Any]]) -> list[Point]:
    """Every combination of the grid's values, first path slowest; {} for an empty grid."""
    paths = list(grid)
    return [dict(zip(paths, combo, strict=True)) for combo in itertools.product(*grid.values())]


def label(point: Point) -> str:
    """`activation.name=relu,activation.params.sigma=0.3`; `base` for the empty point."""
    return ",".join(f"{path}={_show(value)}" for path, value in point.items()) or "base"


def _show(value: Any) -> str:
    # Strings bare, unless they would read as another JSON value ("1", "true").
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value
    return canonical(value)


def experiment_name(sweep_name: str, index: int, point: Point, seed: int) -> str:
    """The experiment's name; also how a sweep finds which point and seed an experiment is."""
    name = f"{sweep_name}/{label(point)}/seed={seed}"
    return name if len(name) <= NAME_MAX else f"{sweep_name}/point-{index}/seed={seed}"


def _set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = doc
    for i, key in enumerate(parents):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            where = ".".join(parents[: i + 1])
            raise ValueError(f"{where} is {canonical(child)}, not an object")
        node = child
    node[leaf] = copy.deepcopy(value)


def _accepted(section: str, name: Any) -> set[str] | None:
    """Parameter names the chosen unit or schedule kind takes; None when the name is unknown."""
    lookup = activations.registry.param_names if section == "activation" else schedules.param_names
    try:
        return set(lookup(str(name)))
    except (KeyError, ValueError):
        return None


def _drop_foreign_params(spec: dict[str, Any], point: Point) -> None:
    """When the grid picks a unit (or schedule kind), drop base params that it does not take."""
    for section, key in (("activation", "name"), ("noise_schedule", "kind")):
        if f"{section}.{key}" not in point or f"{section}.params" in point:
            continue
        block = spec.get(section)
        if not isinstance(block, dict):
            continue
        params = block.get("params")
        accepted = _accepted(section, point[f"{section}.{key}"])
        if not isinstance(params, dict) or accepted is None:
            continue  # validation reports an unknown name or a malformed block
        swept = {p.split(".", 2)[2] for p in point if p.startswith(f"{section}.params.")}
        block["params"] = {k: v for k, v in params.items() if k in accepted or k in swept}


def point_spec(body: SweepCreate, index: int, point: Point, seed: int) -> dict[str, Any]:
    """The spec document of one experiment: base spec, grid values, seed, name and tags."""
    spec = copy.deepcopy(body.base_spec or {})
    for path, value in point.items():
        _set_path(spec, path, value)
    _drop_foreign_params(spec, point)
    spec["seed"] = seed
    spec["name"] = experiment_name(body.name, index, point, seed)
    base_tags = spec.get("tags", [])
    if isinstance(base_tags, list):
        spec["tags"] = list(dict.fromkeys([*base_tags, *body.tags]))
    return spec


def _point_errors(where: str, spec: dict[str, Any] | None, exc: Exception) -> list[dict]:
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
            errors.extend(_point_errors(where, spec, exc))
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
            _set_path(spec, path, value)
    except ValueError:
        return []
    before = {
        f"{section}.params.{k}"
        for section in ("activation", "noise_schedule")
        for k in ((spec.get(section) or {}).get("params") or {})
    }
    _drop_foreign_params(spec, point)
    after = {
        f"{section}.params.{k}"
        for section in ("activation", "noise_schedule")
        for k in ((spec.get(section) or {}).get("params") or {})
    }
    return sorted(before - after)
