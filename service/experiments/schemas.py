"""HTTP schemas of experiments (tables live in core.store.models)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Progress(BaseModel):
    epoch: int
    step: int
    total: int | None = Field(None, description="Total optimizer steps, known once running.")


Reason = Literal["priority", "fair_share", "order", "owner_limit", "resources", "pack", "no_worker"]


class QueuePlace(BaseModel):
    """Where a queued experiment stands, in the order the policy would start things now."""

    position: int = Field(description="1 for the next to start, across every owner.")
    ahead: int = Field(description="Queued experiments that start before it, every owner's.")
    ahead_other_owners: int = Field(
        description="How many of those are other owners' (counts only)."
    )
    reason: Reason = Field(description="Why it waits (docs/scheduling.md lists the reasons).")
    reason_text: str
    eta_seconds: float | None = Field(
        description="Estimated seconds until it starts, from the measured speed of runs of"
        " its dataset and model here; null when nothing was measured yet or it cannot start."
    )


class ExperimentRead(BaseModel):
    """Read from an `Experiment` row (`model_validate(row)`)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str | None
    status: str
    status_reason: str | None = Field(None, description="Why it failed, e.g. diverged, error.")
    status_message: str | None
    sweep_id: str | None
    activation: str
    tags: list[str]
    spec: dict[str, Any]
    progress: Progress
    priority: int = 0
    parent_id: str | None = Field(None, description="A fork's parent (docs/forks.md).")
    fork: dict[str, Any] | None = Field(
        None,
        description="A fork's start: {parent_id, at_step, overrides, noise_clock, checkpoint}.",
    )
    queue: QueuePlace | None = Field(
        None, description="While queued: its place, why it waits, when it should start."
    )
    summary: dict[str, Any] | None = Field(None, description="Final metrics once finished.")
    attempts: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ExperimentList(BaseModel):
    items: list[ExperimentRead]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


class MetricPoint(BaseModel):
    step: int
    epoch: int
    value: float


class MetricSeries(BaseModel):
    experiment_id: str
    inherited_through_step: int | None = Field(
        None,
        description="A fork's: the points up to this step are its parent's (read from the "
        "parent's rows, not copied); after it, its own.",
    )
    series: dict[str, list[MetricPoint]]


class MetricColumns(BaseModel):
    """One series as three arrays of equal length (`format=columnar`)."""

    step: list[int]
    epoch: list[int]
    value: list[float]


class MetricSeriesColumns(BaseModel):
    experiment_id: str
    inherited_through_step: int | None = None
    series: dict[str, MetricColumns]


class _PreviewBase(BaseModel):
    n_train: int = Field(description="Examples in the training split.")
    batch_size: int
    steps_per_epoch: int = Field(
        description="The last partial batch counts; a lone last example joins the one before."
    )
    total_steps: int = Field(description="training.max_steps, else epochs x steps_per_epoch.")
    total_epochs: int
    steps: Literal["all", "evaluations"] = Field(description="Every step, or the evaluations'.")
    sampled: bool = Field(description="Over 200,000 steps: evaluated at evenly spaced ones.")
    notes: list[str] = Field(description="What may end the run sooner (early stopping, time).")


class SpecPreview(_PreviewBase):
    """`noise/scale` and `lr` by step, on the axes of the metrics the run will store."""

    series: dict[str, list[MetricPoint]]


class SpecPreviewColumns(_PreviewBase):
    series: dict[str, MetricColumns]


class MetricNames(BaseModel):
    experiment_id: str
    names: list[str] = Field(description="Every metric name it has reported, sorted.")


class EventRead(BaseModel):
    id: int
    at: datetime
    kind: str = Field(description="status | log")
    status: str | None
    message: str | None
    data: dict[str, Any] | None
    experiment_id: str | None = Field(None, description="Set on a sweep's events.")


class EventList(BaseModel):
    events: list[EventRead]
    next_after: int = Field(description="Pass as `after` to get only newer events.")


class CurveLabel(BaseModel):
    sweep_id: str | None
    arm: str | None = Field(description="The sweep grid point's label; null outside a sweep.")
    seed: int | None = Field(description="The sweep experiment's seed; null outside a sweep.")


class MetricsBatch(BaseModel):
    experiments: dict[str, dict[str, list[MetricPoint]]] = Field(
        description="experiment id -> metric name -> points ordered by step."
    )
    labels: dict[str, CurveLabel] = Field(
        default_factory=dict, description="experiment id -> its sweep, arm and seed."
    )


class MetricsBatchColumns(BaseModel):
    experiments: dict[str, dict[str, MetricColumns]] = Field(
        description="experiment id -> metric name -> columns ordered by step."
    )
    labels: dict[str, CurveLabel] = Field(
        default_factory=dict, description="experiment id -> its sweep, arm and seed."
    )


class KeptCheckpoints(BaseModel):
    """The steps an experiment can be forked at (POST /v1/experiments/{id}/fork)."""

    experiment_id: str
    steps: list[int] = Field(description="Ascending; a fork's include its lineage's up to k.")
