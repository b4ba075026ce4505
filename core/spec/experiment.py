"""The experiment spec: what a researcher POSTs, and what the worker trains."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.spec.activation import ActivationSpec, ScheduleSpec
from core.spec.datasets import DatasetSpec
from core.spec.metrics import ScoreMetric
from core.spec.models import ModelSpec
from core.spec.numbers import Int

CANONICAL_EXAMPLE: dict[str, Any] = {
    "name": "noisy-relu-sigma-0.3",
    "seed": 0,
    "dataset": {"name": "mnist1d"},
    "model": {"arch": "mlp", "hidden": [100, 100]},
    "activation": {"name": "noisy_relu", "params": {"sigma": 0.3}},
    "noise_schedule": {"kind": "cosine", "start": 1.0, "end": 0.0, "unit": "step"},
    "optimizer": {"name": "adam", "lr": 0.01},
    "training": {"epochs": 20, "batch_size": 100},
}


# A tag: 1 to 64 characters, in the schema as in validation (sweeps use the same type).
Tag = Annotated[str, Field(min_length=1, max_length=64)]


class OptimizerSpec(BaseModel):
    """Optimizer, learning rate and its schedule (a multiplier of `lr`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Literal["sgd", "adam", "adamw"] = "adam"
    lr: float = Field(1e-3, gt=0.0, le=1e9)
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="sgd only.")
    nesterov: bool = Field(False, description="sgd only; needs momentum > 0.")
    betas: list[float] = Field(
        default_factory=lambda: [0.9, 0.999],
        min_length=2,
        max_length=2,
        description="adam/adamw only.",
    )
    weight_decay: float = Field(0.0, ge=0.0, le=10.0)
    lr_schedule: ScheduleSpec = Field(
        default_factory=lambda: ScheduleSpec(kind="constant", start=1.0, end=1.0),
        description="Multiplier of lr over training.",
    )

    @field_validator("betas")
    @classmethod
    def _betas(cls, betas: list[float]) -> list[float]:
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError("each beta must be in [0, 1)")
        return betas

    @model_validator(mode="after")
    def _nesterov(self) -> OptimizerSpec:
        if self.nesterov and (self.name != "sgd" or self.momentum <= 0):
            raise ValueError("nesterov needs optimizer sgd with momentum > 0")
        return self


class EarlyStoppingSpec(BaseModel):
    """Stop when `metric` has not improved for `patience` evaluations."""

    model_config = ConfigDict(extra="forbid", strict=True)

    metric: ScoreMetric = "val/loss"
    mode: Literal["min", "max"] = "min"
    patience: Int = Field(5, ge=1, le=10_000)
    min_delta: float = Field(0.0, ge=0.0)


class KeepCheckpointsSpec(BaseModel):
    """Which checkpoints a run keeps beside the one it resumes from: the steps a fork may
    start at (docs/forks.md). Each costs one checkpoint file (model, optimizer state, RNG)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    every: Int = Field(
        1, ge=0, le=1_000_000, description="Keep every N-th evaluation's checkpoint; 0 = none."
    )
    at: list[Int] = Field(
        default_factory=list,
        max_length=1000,
        description="Also keep the checkpoints at these steps (any step, mid-epoch too).",
    )
    best: bool = Field(False, description="Also keep the best evaluation's (by best_metric).")
    max_kept: Int = Field(
        200,
        ge=1,
        le=100_000,
        description="At most this many `every` checkpoints: past it, every other one is "
        "dropped and `every` doubles (`at` and `best` are always kept).",
    )

    @field_validator("at")
    @classmethod
    def _steps(cls, at: list[int]) -> list[int]:
        if any(step < 1 for step in at):
            raise ValueError("steps are counted from 1")
        return sorted(set(at))


class TrainingSpec(BaseModel):
    """Length, batching, cadences and device of a run."""

    model_config = ConfigDict(extra="forbid", strict=True)

    epochs: Int = Field(10, ge=1, le=100_000)
    max_steps: Int | None = Field(
        None, ge=1, description="Stop after this many optimizer steps (overrides epochs)."
    )
    batch_size: Int = Field(100, ge=1, le=65_536)
    eval_batch_size: Int = Field(1000, ge=1, le=65_536)
    train_eval_size: Int = Field(
        1000,
        ge=0,
        le=1_000_000,
        description="train/loss and train/acc: eval mode (noise off, like val and test) on "
        "the first min(n_train, this) training examples; 0 = not measured. The running "
        "means with noise on are train_running/loss and train_running/acc.",
    )
    grad_clip: float | None = Field(None, gt=0.0, description="Clip the global gradient norm.")
    early_stopping: EarlyStoppingSpec | None = None
    best_metric: str = Field(
        "val/acc", min_length=1, max_length=128, description="Picks the summary's `best` eval."
    )
    best_mode: Literal["min", "max"] = Field("max", description="Whether less or more is better.")
    time_limit_s: float | None = Field(None, gt=0.0, description="Wall-time limit; then `timeout`.")
    eval_every: Int = Field(1, ge=1, description="Evaluate every N epochs.")
    diagnostics_every: Int = Field(
        5, ge=0, description="Diagnostics every N evals (and at the last); 0 = off."
    )
    checkpoint_every: Int = Field(1, ge=1, description="Checkpoint every N epochs and at the end.")
    keep_checkpoints: KeepCheckpointsSpec = Field(
        default_factory=KeepCheckpointsSpec,
        description="Checkpoints kept for forks (the latest is always kept, to resume).",
    )
    checkpoint_interval_s: float = Field(
        30.0,
        ge=0.0,
        description="At most one periodic checkpoint per this many seconds (0: every time); "
        "stops and the end always checkpoint.",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16"] = Field("fp32", description="bf16 autocast (CUDA only).")
    compile: bool = Field(False, description="torch.compile the model (CUDA only).")


class ExperimentSpec(BaseModel):
    """One training job: a dataset, a model, an activation, a noise schedule and a seed."""

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [CANONICAL_EXAMPLE]}
    )

    name: str | None = Field(None, max_length=200)
    seed: Int = Field(0, ge=0, le=2**31 - 1)
    tags: list[Tag] = Field(default_factory=list, max_length=32)
    priority: Int = Field(
        0,
        ge=-100,
        le=100,
        description="Higher runs first on a shared box, up to the API key's max_priority;"
        " may preempt running work of a lower priority (docs/scheduling.md).",
    )
    dataset: DatasetSpec
    model: ModelSpec
    activation: ActivationSpec
    noise_schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # Postgres text cannot hold NUL: refuse it on every backend alike, naming the field.
        path = _nul_path(data, ())
        if path is not None:
            raise ValueError(
                f"{'.'.join(map(str, path)) or 'spec'}: NUL characters are not allowed"
            )
        return data

    @model_validator(mode="after")
    def _early_stopping_is_reported(self) -> ExperimentSpec:
        # The worker would fail after the first epoch; say so at submit instead.
        rule = self.training.early_stopping
        unreported = {  # a split's prefix -> why it is not reported, when it is not
            "val/": "dataset.val_fraction is 0" if not self.dataset.val_fraction else None,
            "train/": "training.train_eval_size is 0"
            if not self.training.train_eval_size
            else None,
        }
        for prefix, why in unreported.items():
            if rule is not None and rule.metric.startswith(prefix) and why is not None:
                raise ValueError(
                    f"training.early_stopping.metric: {rule.metric} is not reported when {why}"
                )
        return self


def _nul_path(value: Any, path: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The path of the first string (key or value) holding a NUL character, or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                return (*path, key)
            found = _nul_path(item, (*path, key))
            if found is not None:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_path(item, (*path, i))
            if found is not None:
                return found
    return None
