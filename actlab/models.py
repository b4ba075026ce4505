"""Typed results: mirrors of the API's read schemas (tests check them against /openapi.json)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "pruned"})


class _Read(BaseModel):
    # A newer server may add fields: keep them instead of failing.
    model_config = ConfigDict(extra="allow")


class Progress(_Read):
    epoch: int
    step: int
    total: int | None = None


class QueuePlace(_Read):
    """Where a queued experiment stands: position (1 is next), what is ahead, why it waits,
    and when it should start (seconds, None when unknown)."""

    position: int
    ahead: int
    ahead_other_owners: int
    reason: str
    reason_text: str
    eta_seconds: float | None


class Experiment(_Read):
    id: str
    name: str | None
    status: str
    status_reason: str | None = None
    status_message: str | None
    sweep_id: str | None
    activation: str
    tags: list[str]
    spec: dict[str, Any]
    progress: Progress
    priority: int = 0
    parent_id: str | None = None
    fork: dict[str, Any] | None = None
    queue: QueuePlace | None = None
    summary: dict[str, Any] | None = None
    attempts: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def done(self) -> bool:
        """Succeeded, failed or cancelled."""
        return self.status in TERMINAL


class ExperimentList(_Read):
    items: list[Experiment]
    next_cursor: str | None = None


class MetricPoint(_Read):
    step: int
    epoch: int
    value: float


class MetricSeries(_Read):
    experiment_id: str
    inherited_through_step: int | None = None  # a fork's: up to here, its parent's points
    series: dict[str, list[MetricPoint]]


class SpecPreview(_Read):
    """What a spec's run will see, before it runs: its length, and `noise/scale` and `lr`
    on the axes of the metrics it will store (a point at step s: the s-th step's value)."""

    n_train: int
    batch_size: int
    steps_per_epoch: int
    total_steps: int
    total_epochs: int
    steps: str
    sampled: bool
    notes: list[str]
    series: dict[str, list[MetricPoint]]


class Event(_Read):
    id: int
    at: datetime
    kind: str
    status: str | None
    message: str | None
    data: dict[str, Any] | None
    experiment_id: str | None = None  # set on a sweep's events


class EventList(_Read):
    events: list[Event]
    next_after: int


class SweepExperiment(_Read):
    id: str
    point: dict[str, Any]
    label: str
    seed: int
    status: str
    status_reason: str | None
    value: float | None
    pack_id: str | None = None  # the pack it trains in (packed sweeps); None when alone
    rung: int | None = None  # an adaptive sweep's: the rung it is bound for
    rung_step: int | None = None  # that rung's step (where it pauses, or was pruned)
    promoted_at: list[int] = []  # the rung steps it was promoted at


class ArmRow(_Read):
    point: dict[str, Any]
    label: str
    n: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None
    n_pending: int
    n_failed: int
    n_cancelled: int
    n_pruned: int = 0
    n_missing: int
    # bootstrap=true on test/acc: the interval resampling seeds and test examples both.
    boot_examples_ci_low: float | None = None
    boot_examples_ci_high: float | None = None


class Comparison(_Read):
    """An arm minus the baseline (paired t, else Welch), with its family-adjusted p-values,
    effect sizes and intervals; `flags` says why a figure is missing."""

    point: dict[str, Any]
    label: str
    baseline_label: str
    test: str
    n_pairs: int
    n_arm: int
    n_baseline: int
    n_failed: int
    n_dropped: int
    mean_diff: float | None
    ci_low: float | None
    ci_high: float | None
    statistic: float | None = None
    df: float | None = None
    p_value: float | None
    p_holm: float | None = None
    p_bh: float | None = None
    d_z: float | None = None
    d_z_ci_low: float | None = None
    d_z_ci_high: float | None = None
    hedges_g: float | None = None
    hedges_g_ci_low: float | None = None
    hedges_g_ci_high: float | None = None
    boot_ci_low: float | None = None
    boot_ci_high: float | None = None
    boot_examples_ci_low: float | None = None
    boot_examples_ci_high: float | None = None
    margin: float | None = None
    tost_p: float | None = None
    flags: list[str] = []


class Family(_Read):
    kind: str
    size: int
    alpha: float = 0.05


class SweepSummary(_Read):
    id: str
    name: str
    status: str
    created_at: datetime
    grid: dict[str, list[Any]]
    seeds: list[int]
    metric: str
    baseline: dict[str, Any] | None
    size: int
    status_counts: dict[str, int]
    packing: dict[str, Any] | None = None  # {"max_members": K} for a packed sweep
    labels: dict[str, str] | None = None  # arm label -> the name a report prints
    n_trials: int | None = None  # an Optuna search's planned trials
    trials_left: int = 0  # ... and those not asked yet

    @property
    def done(self) -> bool:
        """Every experiment finished."""
        return self.status in TERMINAL


class RungRow(_Read):
    rung: int
    resource: int
    step: int | None
    reached: int
    waiting: int
    promoted: int
    pruned: int


class Sweep(SweepSummary):
    base_spec: dict[str, Any]
    fork: dict[str, Any] | None = None  # a continuation study's start
    search: dict[str, Any] | None = None  # successive halving, ASHA or an Optuna search
    rungs: list[RungRow] = []
    confidence: float
    experiments: list[SweepExperiment]
    aggregate: list[ArmRow]
    comparisons: list[Comparison]
    family: Family | None = None  # what p_holm and p_bh are adjusted over
    dropped_params: dict[str, list[str]] = {}


class SweepList(_Read):
    items: list[SweepSummary]
    next_cursor: str | None = None


class CurveLabel(_Read):
    sweep_id: str | None
    arm: str | None
    seed: int | None


class MetricsBatch(_Read):
    experiments: dict[str, dict[str, list[MetricPoint]]]
    labels: dict[str, CurveLabel] = {}


class StreamEvent(BaseModel):
    """One Server-Sent Event: its `kind` (status, log, metrics, progress, end, ...) and data."""

    kind: str
    data: Any
    id: str | None = None
    experiment_id: str | None = None


# Client model -> the server's schema component it mirrors (checked by the tests).
class QueueItem(_Read):
    id: str
    name: str | None
    owner: str | None
    sweep_id: str | None
    status: str
    priority: int
    progress: Progress
    queue: QueuePlace | None = None
    worker: str | None = None
    remaining_seconds: float | None = None


class OtherWork(_Read):
    queued: int
    running: int


class Workers(_Read):
    live: int
    busy: int


class Queue(_Read):
    """`GET /v1/queue`: your running and queued work in the order it would start."""

    policy: str
    items: list[QueueItem]
    others: OtherWork
    workers: Workers


class PowerRow(_Read):
    label: str
    baseline_label: str
    n_pairs: int
    sd_diff: float | None
    effect_size: float | None
    seeds_needed: int | None  # pairs to detect `delta` at `power` and the family's alpha
    detectable_delta: float | None  # what the current pairs detect
    note: str | None = None


class Power(_Read):
    """GET /v1/sweeps/{id}/power: the seeds each comparison needs for `delta`."""

    sweep_id: str
    metric: str
    delta: float
    power: float
    alpha: float
    family: str
    family_size: int
    alpha_per_test: float
    rows: list[PowerRow]


MIRRORS: dict[type[BaseModel], str] = {
    QueuePlace: "QueuePlace",
    QueueItem: "QueueItem",
    OtherWork: "OtherWork",
    Workers: "Workers",
    Queue: "QueueRead",
    Progress: "Progress",
    Experiment: "ExperimentRead",
    ExperimentList: "ExperimentList",
    MetricPoint: "MetricPoint",
    MetricSeries: "MetricSeries",
    SpecPreview: "SpecPreview",
    Event: "EventRead",
    EventList: "EventList",
    SweepExperiment: "SweepExperiment",
    ArmRow: "ArmRow",
    Comparison: "Comparison",
    Family: "Family",
    PowerRow: "PowerRow",
    Power: "PowerRead",
    SweepSummary: "SweepSummary",
    Sweep: "SweepRead",
    SweepList: "SweepList",
    CurveLabel: "CurveLabel",
    MetricsBatch: "MetricsBatch",
}
