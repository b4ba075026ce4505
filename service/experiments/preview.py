"""A spec's preview: the `noise/scale` and `lr` each step of its run will see, before it runs.

The run's length comes from the dataset spec's split sizes and the horizon functions the
engine itself builds its loop and schedules from (`core.spec.horizon`); each value is the
schedule's own `at(t)` at the trainer's step -> t position. Points use the metrics' axes:
`step` counts steps taken (a metric logged at step s reports the value the s-th step used)
and `epoch` is that step's 1-based epoch, so a preview compares point for point with the
`noise/scale` and `lr` series the run stores.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import Any

from core.settings import Settings
from core.spec import ExperimentSpec
from core.spec.horizon import Horizon, build_schedule, epoch_eval_steps, horizon, position
from core.store.metrics import Row
from service import limits
from service.errors import not_finite
from service.experiments.downsample import downsample

# Steps evaluated per series at most; a longer run is evaluated at this many evenly spaced
# steps (first and last included), each still exact (about 0.1 s of CPU a series).
MAX_EVALUATED = 200_000


class PreviewSteps(str, enum.Enum):
    all = "all"
    evaluations = "evaluations"


def build(
    *, settings: Settings, spec: ExperimentSpec, steps: PreviewSteps, max_points: int | None
) -> dict[str, Any]:
    """The horizon, notes and `{name: rows}` series of a spec that POST /v1/experiments
    would accept (the same limits apply: a spec it refuses is refused here alike)."""
    limits.check_spec(spec, settings)
    h = horizon(spec)
    counts, step_at = _steps(spec, h, steps)
    indices = _sampled(counts)
    series = {
        "noise/scale": _rows(
            spec.noise_schedule, h, indices, step_at, scale=1.0, path="noise_schedule"
        ),
        "lr": _rows(
            spec.optimizer.lr_schedule,
            h,
            indices,
            step_at,
            scale=spec.optimizer.lr,
            path="optimizer.lr_schedule",
        ),
    }
    if max_points is not None:
        series = {name: downsample(rows, max_points) for name, rows in series.items()}
    return {
        "n_train": h.n_train,
        "batch_size": spec.training.batch_size,
        "steps_per_epoch": h.steps_per_epoch,
        "total_steps": h.total_steps,
        "total_epochs": h.total_epochs,
        "steps": steps.value,
        "sampled": len(indices) < counts,
        "notes": _notes(spec, h, counts, len(indices)),
        "series": series,
    }


def _steps(spec: ExperimentSpec, h: Horizon, which: PreviewSteps) -> tuple[int, Callable]:
    """How many steps the series has, and its i-th step count."""
    if which is PreviewSteps.all:
        return h.total_steps, lambda i: i + 1
    regular = epoch_eval_steps(spec.training, h)
    final = not regular or regular[-1] != h.total_steps  # the last step is always evaluated
    return len(regular) + final, lambda i: regular[i] if i < len(regular) else h.total_steps


def _sampled(n: int) -> range | list[int]:
    if n <= MAX_EVALUATED:
        return range(n)
    return [round(i * (n - 1) / (MAX_EVALUATED - 1)) for i in range(MAX_EVALUATED)]


def _rows(
    schedule_spec: Any,
    h: Horizon,
    indices: range | list[int],
    step_at: Callable,
    *,
    scale: float,
    path: str,
) -> list[Row]:
    """(step, epoch, value): what the trainer sets for that step (1.0 * x is exactly x)."""
    schedule, unit, spe = build_schedule(schedule_spec, h), schedule_spec.unit, h.steps_per_epoch
    rows = []
    for i in indices:
        step = step_at(i)
        t = position(unit, step - 1, spe)
        value = scale * float(schedule.at(t))  # as Trainer._set_lr
        if not math.isfinite(value):
            raise not_finite(path, step, value)
        rows.append((step, (step - 1) // spe + 1, value))
    return rows


def _notes(spec: ExperimentSpec, h: Horizon, count: int, evaluated: int) -> list[str]:
    t, notes = spec.training, []
    if t.early_stopping is not None:
        notes.append(
            f"early stopping ({t.early_stopping.metric}, patience {t.early_stopping.patience}) "
            f"may end the run before step {h.total_steps}; the schedule's horizon stays "
            f"{h.total_steps} steps, so every value up to the stop is as shown"
        )
    if t.time_limit_s is not None:
        notes.append(f"the time limit of {t.time_limit_s:g} s may end the run sooner")
    if evaluated < count:
        notes.append(
            f"{count} steps: values at {evaluated} evenly spaced ones (first and last "
            "included), each exact"
        )
    return notes
