"""A run's length in steps and epochs, and where each step sits on its schedules.

The engine builds its loop bounds and schedules from these functions and the API's spec
preview reads the same ones, so the curve a preview shows is the curve the run sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from activations import schedules


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Keep the final partial batch, so every example is seen once an epoch; a remainder of a
    single example (BatchNorm cannot train on one) joins the last full batch instead."""
    full, rest = divmod(n_train, batch_size)
    return max(full + (1 if rest > 1 else 0), 1)


@dataclass(frozen=True)
class Horizon:
    """How long a run is: examples per epoch, steps per epoch, steps and epochs in all."""

    n_train: int
    steps_per_epoch: int
    total_steps: int
    total_epochs: int


def horizon(spec: Any, *, n_train: int | None = None) -> Horizon:
    """The run's length; `n_train` defaults to the dataset spec's training-split size."""
    t = spec.training
    n = spec.dataset.train_size() if n_train is None else n_train
    spe = steps_per_epoch(n, t.batch_size)
    total_steps = t.max_steps if t.max_steps is not None else t.epochs * spe
    return Horizon(n, spe, total_steps, math.ceil(total_steps / spe))


def build_schedule(schedule_spec: Any, h: Horizon, *, from_step: int = 0) -> Any:
    """A schedule over the run's horizon in its unit (steps or epochs); with `from_step`, one
    whose clock starts there (a fork that restarts its noise schedule) and spans the rest."""
    total = h.total_steps if schedule_spec.unit == "step" else h.total_epochs
    offset = position(schedule_spec.unit, from_step, h.steps_per_epoch) if from_step else 0
    schedule = schedules.create(
        schedule_spec.kind, **schedule_spec.build_params(total=max(total - offset, 1))
    )
    return Restarted(schedule, offset) if offset else schedule


class Restarted:
    """A schedule whose t = 0 is the run's t = `offset`: t - offset is what it is given."""

    def __init__(self, schedule: schedules.Schedule, offset: int) -> None:
        self.schedule, self.offset = schedule, offset

    def at(self, t: float) -> float:
        return self.schedule.at(t - self.offset)

    def advance_to(self, t: float) -> float:
        return self.schedule.advance_to(t - self.offset)

    def state_dict(self) -> dict[str, Any]:
        return self.schedule.state_dict()

    def load_state_dict(self, state: Any) -> None:
        self.schedule.load_state_dict(state)


def position(unit: str, step_index: int, spe: int) -> int:
    """The schedule's t during step `step_index` (0-based): the step, or its 0-based epoch."""
    return step_index if unit == "step" else step_index // spe


def epoch_eval_steps(training: Any, h: Horizon) -> range:
    """The step counts of the trainer's epoch-end evaluations (every `eval_every` epochs).

    It also evaluates at the last step, `total_steps`, which this range holds only when the
    run ends on such an epoch. Each evaluation logs `noise/scale` and `lr`.
    """
    every = training.eval_every * h.steps_per_epoch
    return range(every, h.total_steps + 1, every)
