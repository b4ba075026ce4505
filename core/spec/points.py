"""A sweep's points: a point is {dotted spec path: value}; its label, and the spec document
of one experiment at a point and seed.

Both the API (a grid's points, when a sweep is created) and the workers (an Optuna search's
next trial, core/trials.py) build members from here, so a trial's spec is written by the same
rules as a grid point's.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import activations
from activations import schedules

Point = dict[str, Any]
NAME_MAX = 200  # Experiment.name


def canonical(value: Any) -> str:
    """One string per JSON value, to compare grid values and detect duplicates."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


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


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set `path` (dotted) in `doc`, creating the objects on the way."""
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


def drop_foreign_params(spec: dict[str, Any], point: Point) -> None:
    """When the point picks a unit (or schedule kind), drop base params that it does not take."""
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


def point_spec(
    base_spec: dict[str, Any] | None,
    *,
    sweep_name: str,
    tags: list[str],
    index: int,
    point: Point,
    seed: int,
) -> dict[str, Any]:
    """The spec document of one experiment: base spec, the point's values, seed, name, tags."""
    spec = copy.deepcopy(base_spec or {})
    for path, value in point.items():
        set_path(spec, path, value)
    drop_foreign_params(spec, point)
    spec["seed"] = seed
    spec["name"] = experiment_name(sweep_name, index, point, seed)
    base_tags = spec.get("tags", [])
    if isinstance(base_tags, list):
        spec["tags"] = list(dict.fromkeys([*base_tags, *tags]))
    return spec
