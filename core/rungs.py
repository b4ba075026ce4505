"""An adaptive sweep's rungs: the steps its members pause at (docs/search.md); core/search.py
decides them, core/trials.py binds a new trial's members to the first."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.spec import ExperimentSpec
from core.spec.horizon import Horizon, build_schedule, horizon, position


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
    length, then the run's end. A fork sweep's (`start_step`, its fork's at_step) count from
    the fork: at_step + min_resource * eta**i, below the steps left after it."""
    h = horizon(ExperimentSpec.model_validate(spec))
    rule = halving(search)
    if rule is None:
        return [Rung(0, h.total_steps, None)]
    start = int(search.get("start_step") or 0)
    epochs = rule["unit"] == "epochs"
    left = max(h.total_steps - start, 0)  # the steps a member trains: all, or after its fork
    total = math.ceil(left / h.steps_per_epoch) if epochs else left
    eta, resource = int(rule["reduction_factor"]), int(rule["min_resource"])
    out: list[Rung] = []
    while resource < total:
        step = start + (resource * h.steps_per_epoch if epochs else resource)
        out.append(Rung(len(out), resource, min(step, h.total_steps)))
        resource *= eta
    out.append(Rung(len(out), total, None))
    first = int(search.get("compare_from_step") or 0)  # compare_after: no rung before it
    kept = [r for r in out if r.step is None or r.step >= first]
    return [Rung(i, r.resource, r.step) for i, r in enumerate(kept)]


def compare_from_step(
    after: float | str, specs: list[dict[str, Any]], *, start: int = 0, restart: bool = False
) -> int:
    """The first step a rung may sit at under `compare_after`: a fraction of the run, or
    `annealed`, the step from which every arm's noise schedule stays within `TOLERANCE` of
    its last value (the latest over the arms, so that every arm is compared annealed). A fork
    sweep whose noise schedule restarts at its fork (`restart`, from step `start`) measures
    both over the steps after the fork; one on the run's own clock, over the whole run."""
    out = 0
    origin = start if restart else 0
    for spec in specs:
        parsed = ExperimentSpec.model_validate(spec)
        h = horizon(parsed)
        if after == "annealed":
            out = max(out, annealed_step(parsed, h, from_step=origin))
        else:
            out = max(out, origin + math.ceil(float(after) * (h.total_steps - origin)))
    return out


TOLERANCE = 0.05  # of the schedule's range: "annealed" once it stays this close to its end
_SAMPLES = 2000  # where the schedule is read: the step found is within total / 2000


def annealed_step(spec: Any, h: Horizon, *, from_step: int = 0) -> int:
    """The first step (counted from 1; step s trains at the schedule's t = s - 1) from which
    the noise multiplier stays within TOLERANCE of its range from the value it reaches at
    the run's horizon (0 for a constant schedule without warm-up). With `from_step`, of a
    schedule restarted there (a fork's `noise_clock: restart`), over the steps after it."""
    schedule = build_schedule(spec.noise_schedule, h, from_step=from_step)
    span_steps = h.total_steps - from_step
    steps = sorted({from_step + round(span_steps * i / _SAMPLES) for i in range(_SAMPLES + 1)})
    unit = spec.noise_schedule.unit
    at = [position(unit, max(s - 1, from_step), h.steps_per_epoch) for s in steps]
    values = [schedule.at(t) for t in at]
    final = schedule.at(position(unit, h.total_steps, h.steps_per_epoch))  # its horizon's
    span = max(abs(v - final) for v in values)
    if span == 0:
        return 0
    for i in range(len(steps) - 1, -1, -1):
        if abs(values[i] - final) > TOLERANCE * span:
            return steps[i + 1]  # the first sample after the last one still annealing
    return 0


def first_pause(search: dict[str, Any], spec: dict[str, Any]) -> int | None:
    """The step a new member pauses at (its first rung), None if it has only one."""
    return rungs(search, spec)[0].step
