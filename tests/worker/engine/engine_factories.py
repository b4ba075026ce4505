"""Factories for the engine tests: a small fast spec and a recording callback."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from core.spec import ExperimentSpec
from worker.engine import Callbacks

BASE: dict[str, Any] = {
    "seed": 0,
    "dataset": {"name": "mnist1d", "num_samples": 1000},
    "model": {"arch": "mlp", "hidden": [32, 32]},
    "activation": {"name": "noisy_relu", "params": {"sigma": 0.3}},
    "noise_schedule": {"kind": "cosine", "start": 1.0, "end": 0.0, "unit": "step"},
    "optimizer": {"name": "adam", "lr": 0.01},
    # 720 training examples / 50 = 14 full batches + a partial one: 15 steps an epoch.
    "training": {"epochs": 3, "batch_size": 50},
}
STEPS_PER_EPOCH = 15


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and key in ("training", "optimizer", "noise_schedule"):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def make_spec(**over: Any) -> ExperimentSpec:
    """The base spec; training, optimizer and noise_schedule merge, other sections replace."""
    return ExperimentSpec.model_validate(merge(BASE, over))


class Recorder(Callbacks):
    """Records every report; asks to stop once `stop_at_step` steps are done."""

    poll_interval_s = 0.0  # poll every step so that stops land on an exact step
    progress_interval_s = 0.0

    def __init__(self, stop_at_step: int | None = None) -> None:
        self.stop_at_step = stop_at_step
        self.started: list[dict[str, int]] = []
        self.metrics: list[tuple[int, int, dict[str, float]]] = []
        self.checkpoints: list[tuple[int, int]] = []
        self.progress: list[tuple[int, int]] = []
        self.notes: list[str] = []
        self.step = 0

    def on_start(self, *, total_steps: int, total_epochs: int, resumed_from_step: int) -> None:
        self.started.append(
            {
                "total_steps": total_steps,
                "total_epochs": total_epochs,
                "resumed_from_step": resumed_from_step,
            }
        )

    def on_note(self, message: str) -> None:
        self.notes.append(message)

    def on_progress(self, *, epoch: int, step: int, total_steps: int) -> None:
        self.progress.append((epoch, step))
        self.step = step

    def on_metrics(self, *, step: int, epoch: int, values: dict[str, float]) -> None:
        self.metrics.append((step, epoch, dict(values)))

    def on_checkpoint(self, *, path: Path, step: int, epoch: int) -> None:
        self.checkpoints.append((step, epoch))

    def should_stop(self) -> str | None:
        if self.stop_at_step is not None and self.step >= self.stop_at_step:
            self.stop_at_step = None  # once
            return "test stop"
        return None
