"""An adaptive sweep's rungs: the steps its members pause at (docs/search.md); core/search.py
decides them, core/trials.py binds a new trial's members to the first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.spec import ExperimentSpec
from core.spec.horizon import horizon


@dataclass(frozen=True)
class Rung:
    """A rung: its index, its resource (in the search's unit) and the step members pause
    at (None for the last rung: they train to the end)."""

    index: int
    resource: int
    step: int | None


def halving(search: dict[str, Any]) -> dict[str, Any] | None:
    """The rung rule's fields (reduction_factor, min_resource, unit): the search's own, or an
    Optuna search's `halving` block (None: its trials run to the end)."""
    return search.get("halving") if search["kind"] == "optuna" else search


def rungs(search: dict[str, Any], spec: dict[str, Any]) -> list[Rung]:
    """The rungs of a member whose spec is `spec`: min_resource * eta**i below the run's
    length, then the run's end."""
    h = horizon(ExperimentSpec.model_validate(spec))
    rule = halving(search)
    if rule is None:
        return [Rung(0, h.total_steps, None)]
    epochs = rule["unit"] == "epochs"
    total = h.total_epochs if epochs else h.total_steps
    eta, resource = int(rule["reduction_factor"]), int(rule["min_resource"])
    out: list[Rung] = []
    while resource < total:
        step = resource * h.steps_per_epoch if epochs else resource
        out.append(Rung(len(out), resource, min(step, h.total_steps)))
        resource *= eta
    out.append(Rung(len(out), total, None))
    return out


def first_pause(search: dict[str, Any], spec: dict[str, Any]) -> int | None:
    """The step a new member pauses at (its first rung), None if it has only one."""
    return rungs(search, spec)[0].step
