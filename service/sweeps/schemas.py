"""HTTP schemas of sweeps (the table lives in core.store.models)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    computed_field,
    field_validator,
    model_validator,
)

from core.spec.experiment import CANONICAL_EXAMPLE, Tag
from core.spec.numbers import Int
from core.spec.points import canonical
from core.store.models import Status
from service.sweeps.stats import CONFIDENCE

PENDING = {
    Status.queued.value,
    Status.running.value,
    Status.cancelling.value,
    Status.paused.value,  # at a rung, waiting for the sweep's decision
}

PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# Set per experiment by the sweep itself, never by the grid.
RESERVED_PATHS = {
    "seed": "use `seeds`",
    "name": "the sweep names its experiments",
    "tags": "use `tags`",
}

EXAMPLE: dict[str, Any] = {
    "name": "relu-vs-noisy-relu",
    "base_spec": {k: v for k, v in CANONICAL_EXAMPLE.items() if k not in ("name", "seed")},
    "grid": {"activation.name": ["relu", "noisy_relu"]},
    "seeds": [0, 1, 2, 3, 4],
    "metric": "val/acc",
    "baseline": {"activation.name": "relu"},
    "tags": ["noise-study"],
}

Seed = Annotated[Int, Field(ge=0, le=2**31 - 1)]


class PackingSpec(BaseModel):
    """Train up to `max_members` packable experiments of the sweep as one stacked model."""

    model_config = ConfigDict(extra="forbid", strict=True)

    max_members: Int = Field(
        16, ge=1, le=256, description="Most experiments per pack (1 packs nothing)."
    )


class SweepFork(BaseModel):
    """Where a fork sweep's experiments start (docs/forks.md): an experiment's kept checkpoint
    at `at_step`, or each member of a sweep from its own checkpoint at `at_step`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    experiment_id: str | None = Field(None, max_length=64, description="Fork this experiment.")
    sweep_id: str | None = Field(
        None,
        max_length=64,
        description="Fork every member of this sweep, each from its own checkpoint and with "
        "its own seed: the same first k steps, a different rest.",
    )
    at_step: Int = Field(ge=1, le=2**31 - 1, description="A step every parent kept.")
    noise_clock: Literal["continue", "restart"] = "continue"

    @model_validator(mode="after")
    def _one_source(self) -> SweepFork:
        if (self.experiment_id is None) == (self.sweep_id is None):
            raise ValueError("give one of experiment_id or sweep_id")
        return self


class Halving(BaseModel):
    """The rung rule of an Optuna search: its trials pause at rungs and ASHA promotes the best
    1/eta (they resume from their checkpoints) or prunes them."""

    model_config = ConfigDict(extra="forbid", strict=True)

    reduction_factor: Int = Field(
        3, ge=2, le=100, description="eta: the best 1/eta of a rung's arms go on."
    )
    min_resource: Int = Field(
        1, ge=1, le=2**31 - 1, description="The first rung, in `unit`; then x eta each rung."
    )
    unit: Literal["epochs", "steps"] = "epochs"


Number = Annotated[float, Field(allow_inf_nan=False)]


class Distribution(BaseModel):
    """One dimension of an Optuna search's space: `float` or `int` between `low` and `high`
    (optionally on a log scale, or in steps), or `categorical` over `choices`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["float", "int", "categorical"]
    low: Number | None = None
    high: Number | None = None
    log: bool = False
    step: Number | None = Field(None, gt=0)
    choices: list[Any] | None = Field(None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _shape(self) -> Distribution:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("choices: a categorical dimension needs at least one")
            if self.low is not None or self.high is not None or self.step is not None:
                raise ValueError("low, high and step are for float and int dimensions")
            if len({canonical(c) for c in self.choices}) != len(self.choices):
                raise ValueError("choices: a value is listed twice")
            return self
        if self.choices is not None:
            raise ValueError("choices: only a categorical dimension has them")
        if self.low is None or self.high is None:
            raise ValueError(f"low and high: needed for a {self.type} dimension")
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("low: a log scale needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("step: not with a log scale")
        if self.type == "int":
            for name in ("low", "high", "step"):
                value = getattr(self, name)
                if value is not None and value != int(value):
                    raise ValueError(f"{name}: an int dimension takes whole numbers")
        return self


class SearchSpec(BaseModel):
    """Successive halving or ASHA over the grid's arms (promoted members resume from their
    checkpoints), or an Optuna sampler over a space (docs/search.md)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    kind: Literal["successive_halving", "asha", "optuna"]
    metric: str = Field(
        "val/acc", min_length=1, max_length=128, description="Ranks the arms at each rung."
    )
    mode: Literal["max", "min"] = "max"
    reduction_factor: Int = Field(
        3, ge=2, le=100, description="eta: the best 1/eta of a rung's arms go on."
    )
    min_resource: Int = Field(
        1, ge=1, le=2**31 - 1, description="The first rung, in `unit`; then x eta each rung."
    )
    unit: Literal["epochs", "steps"] = "epochs"
    resume: bool = Field(
        True,
        description="False: a promoted member trains again from step 0, as with a stop-only "
        "pruner (benchmarks/bench_search.py measures what resuming saves).",
    )
    sampler: Literal["tpe", "cmaes", "gp", "random", "qmc"] | None = Field(
        None, description="optuna: the sampler that picks each trial (default tpe)."
    )
    n_trials: Int | None = Field(
        None, ge=1, le=10_000, description="optuna: how many configurations to try."
    )
    space: dict[str, Distribution] | None = Field(
        None,
        description="optuna: dotted spec path -> distribution, e.g. "
        '{"optimizer.lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": true}}; '
        "in a fork sweep, only paths a fork may change (docs/forks.md).",
    )
    parallel: Int | None = Field(
        None,
        ge=1,
        le=1000,
        description="optuna: trials in flight at once (default 1: every trial is asked "
        "knowing all before it, so the search is reproducible); set it to the workers you "
        "have to use them all. With `packing`, trials are asked a pack at a time "
        "(max_members // seeds of them), once this leaves room for a whole pack: set it to "
        "a multiple of that.",
    )
    seed: Int = Field(0, ge=0, le=2**31 - 1, description="optuna: the sampler's seed.")
    n_startup_trials: Int | None = Field(
        None, ge=0, le=10_000, description="optuna: random trials first (default n_trials // 3)."
    )
    halving: Halving | None = Field(
        None, description="optuna: also stop trials at rungs (ASHA); the best resume."
    )
    compare_after: (
        Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | Literal["annealed"] | None
    ) = Field(
        None,
        description="No rung before this fraction of the run, or before every arm's noise "
        "schedule has annealed (`annealed`: within 5% of its range from its final value); "
        "a paused member has seen only part of its annealing (docs/search.md). In a fork "
        "sweep whose noise schedule restarts at the fork, over the steps after it.",
    )
    compare_within: list[str] | None = Field(
        None,
        min_length=1,
        max_length=16,
        description="Grid (or space) paths whose arms are ranked only among themselves at a "
        "rung, e.g. ['noise_schedule.kind']: each group keeps its best 1/eta, so arms are "
        "compared at the same noise level; the end of the run compares them all.",
    )

    @field_validator("space")
    @classmethod
    def _paths(cls, space: dict[str, Distribution] | None) -> dict[str, Distribution] | None:
        for path in space or {}:
            if not PATH.match(path):
                raise ValueError(f"{path!r} is not a dotted spec path like 'optimizer.lr'")
            if path in RESERVED_PATHS:
                raise ValueError(f"{path!r} cannot be searched: {RESERVED_PATHS[path]}")
        return space

    @model_validator(mode="after")
    def _kind(self) -> SearchSpec:
        own = ("sampler", "n_trials", "space", "parallel", "n_startup_trials", "halving")
        if self.kind != "optuna":
            given = [f for f in own if getattr(self, f) is not None]
            if given:
                raise ValueError(f"{given[0]}: only an optuna search takes it")
            return self
        if self.n_trials is None:
            raise ValueError("n_trials: an optuna search needs it")
        if not self.space:
            raise ValueError("space: an optuna search needs at least one dimension")
        self.sampler = self.sampler or "tpe"
        self.parallel = self.parallel or 1
        return self


class SweepCreate(BaseModel):
    """A base spec, a grid over dotted spec paths, and seeds: one experiment per point and seed.

    When the grid sets `activation.name` (or `noise_schedule.kind`), the base spec's params
    for that unit are kept only where the chosen unit accepts them (a base `sigma` is dropped
    for `relu`); params the grid itself sets are always kept, and then validated.
    """

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [EXAMPLE]}
    )

    name: str = Field(min_length=1, max_length=100)
    base_spec: dict[str, Any] | None = Field(
        None,
        description="A spec, minus what the grid and seeds set (a fork sweep has none: its "
        "spec is its parent's).",
    )
    grid: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Dotted spec path -> values; every combination is one grid point.",
        examples=[{"activation.name": ["relu", "noisy_relu"], "noise_schedule.kind": ["cosine"]}],
    )
    seeds: list[Seed] | None = Field(
        None,
        min_length=1,
        description="Each grid point runs once per seed (a fork sweep of a sweep keeps each "
        "parent's seed and takes none; of an experiment, a seed is its noise from step k on).",
    )
    metric: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="Aggregated and compared. Default: `val/acc` when every member holds out a "
        "validation split (`dataset.val_fraction` > 0, as by default), else `test/acc`: rank "
        "arms on validation data and report the test metric of the chosen one "
        "(docs/statistics.md).",
    )
    baseline: dict[str, Any] | None = Field(
        None, description="The grid point others are compared with; default the first point."
    )
    tags: list[Tag] = Field(default_factory=list, max_length=32)
    labels: dict[str, Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None,
        max_length=10_000,
        description="Arm -> the name reports and figures print for it; an arm is given by "
        "its `label` (`activation.name=noisy_relu`). Arms left out are named from their "
        "points (`noisy_relu, sigma=0.3`).",
        examples=[{"activation.name=noisy_relu": "NoisyReLU"}],
    )
    search: SearchSpec | None = Field(
        None,
        description="Adaptive: successive halving or ASHA; the rest of a rung's arms end "
        "as `pruned`, the best resume from their checkpoints (docs/search.md). In a fork "
        "sweep the rungs count from fork.at_step.",
    )
    fork: SweepFork | None = Field(
        None,
        description="A continuation study: every experiment forks the parent(s) at "
        "`at_step` with its grid point as overrides (POST /v1/experiments/{id}/fork); an "
        "optuna search's trials fork one experiment with their sampled point.",
    )
    packing: PackingSpec | None = Field(
        None,
        description=(
            "Pack experiments that differ only in seed, numeric unit params, noise schedule "
            "start/end, lr and weight decay (see docs/packing.md); default: no packing."
        ),
    )

    @field_validator("grid")
    @classmethod
    def _grid(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path, values in grid.items():
            if not PATH.match(path):
                raise ValueError(f"{path!r} is not a dotted spec path like 'activation.name'")
            if path in RESERVED_PATHS:
                raise ValueError(f"{path!r} cannot be swept: {RESERVED_PATHS[path]}")
            if not values:
                raise ValueError(f"{path!r} needs at least one value")
            if len({canonical(v) for v in values}) != len(values):
                raise ValueError(f"{path!r} lists a value twice")
            clash = [p for p in grid if p.startswith(path + ".")]
            if clash:
                raise ValueError(f"{path!r} and {clash[0]!r} overlap; sweep one or the other")
        return grid

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[int] | None) -> list[int] | None:
        if seeds is not None and len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be unique")
        return seeds

    @model_validator(mode="after")
    def _search(self) -> SweepCreate:
        if self.search is not None and self.search.kind == "optuna" and self.grid:
            raise ValueError("grid: an optuna search samples its space; leave grid out")
        if self.search is not None and self.search.compare_within:
            swept = set(self.search.space or self.grid)
            for path in self.search.compare_within:
                if path not in swept:
                    where = "space" if self.search.kind == "optuna" else "grid"
                    raise ValueError(
                        f"search.compare_within: {path!r} is not a path of the {where}; "
                        f"valid: {', '.join(sorted(swept)) or '(none)'}"
                    )
        return self

    @model_validator(mode="after")
    def _sources(self) -> SweepCreate:
        if self.fork is None:
            if self.base_spec is None:
                raise ValueError("base_spec: required (or fork, for a continuation study)")
            if self.seeds is None:
                raise ValueError("seeds: required")
        else:
            if self.base_spec is not None:
                raise ValueError(
                    "base_spec: a fork sweep's spec is its parent's; put what changes in grid"
                )
            if self.fork.sweep_id is not None and self.seeds is not None:
                raise ValueError(
                    "seeds: a fork of a sweep keeps each member's seed (forking an "
                    "experiment takes seeds)"
                )
        return self

    @field_validator("baseline")
    @classmethod
    def _baseline(cls, baseline: dict[str, Any] | None, info: ValidationInfo) -> Any:
        grid = info.data.get("grid")
        if baseline is None or grid is None:
            return baseline
        for path, value in baseline.items():
            if path not in grid:
                raise ValueError(f"{path!r} is not a grid path; grid paths: {sorted(grid)}")
            if canonical(value) not in {canonical(v) for v in grid[path]}:
                raise ValueError(f"{path}={canonical(value)} is not a value of the grid")
        open_paths = [p for p in grid if p not in baseline and len(grid[p]) > 1]
        if open_paths:
            raise ValueError(f"matches several grid points; also give {open_paths}")
        return baseline


class _Over:
    """A row's attributes, with what the service computed (``over``) in their place."""

    def __init__(self, row: Any, over: Mapping[str, Any]) -> None:
        self._row, self._over = row, over

    def __getattr__(self, name: str) -> Any:
        return self._over[name] if name in self._over else getattr(self._row, name)


# Read models: validated from an object's attributes (a row, a stats result), with the
# validation context's values in place of or beside them: `model_validate(obj, context=...)`.
class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    @model_validator(mode="before")
    @classmethod
    def _context_over_attributes(cls, data: Any, info: ValidationInfo) -> Any:
        # A nested read model arrives built, and the context is its parent's: leave it be.
        return _Over(data, info.context) if info.context and not isinstance(data, cls) else data


class SweepExperiment(_Read):
    id: str
    point: dict[str, Any]
    label: str
    seed: int
    status: str
    status_reason: str | None
    value: float | None = Field(description="The metric: the summary's, else its last point.")
    pack_id: str | None = Field(None, description="The pack it trains in; null when alone.")
    rung: int | None = Field(None, description="An adaptive sweep's: the rung it is bound for.")
    rung_step: int | None = Field(
        None,
        description="An adaptive sweep's: the step of that rung, where it pauses (and, if "
        "pruned, where it stopped); null: the end of the run.",
    )
    promoted_at: list[int] = Field(
        default_factory=list,
        description="An adaptive sweep's: the steps of the rungs it was promoted at, first "
        "to last (it resumed from its checkpoint at each).",
    )


class ArmRow(_Read):
    """One grid point across seeds; only succeeded experiments with a value count in n."""

    point: dict[str, Any]
    label: str
    n: int
    mean: float | None
    std: float | None = Field(description="Sample standard deviation (ddof=1); null for n < 2.")
    ci_low: float | None
    ci_high: float | None
    n_pending: int = Field(description="Queued, running or cancelling.")
    n_failed: int
    n_cancelled: int
    n_pruned: int = Field(0, description="Pruned at a rung of an adaptive sweep.")
    n_missing: int = Field(description="Succeeded, but the metric was never reported.")
    boot_examples_ci_low: float | None = Field(
        None,
        description="With bootstrap=true and metric test/acc: a percentile interval of the "
        "mean that resamples seeds and test examples both (n >= 3), so it covers the test "
        "set's sampling too (docs/statistics.md, 'Test-set uncertainty').",
    )
    boot_examples_ci_high: float | None = None


class Comparison(_Read):
    """An arm minus the baseline: paired by seed where at least two seeds have a value in
    both, else Welch's test; with effect sizes, and p-values adjusted over the family."""

    point: dict[str, Any]
    label: str
    baseline_label: str
    test: Literal["paired_t", "welch", "none"] = Field(
        description="paired_t over the seeds both have; welch when fewer than two pair; "
        "none with fewer than two values a side."
    )
    n_pairs: int
    n_arm: int = Field(description="The arm's values (succeeded seeds with the metric).")
    n_baseline: int
    n_failed: int = Field(description="Failed or cancelled experiments of the two arms.")
    n_dropped: int = Field(
        description="Values left out of the paired test: seeds that only one side has."
    )
    mean_diff: float | None
    ci_low: float | None
    ci_high: float | None
    statistic: float | None = Field(None, description="The t statistic.")
    df: float | None = Field(None, description="Its degrees of freedom (Welch's: fractional).")
    p_value: float | None = Field(
        description="Two-sided; null with a flag when there is no test (too few values, or "
        "zero variance), never 0 for want of variance."
    )
    p_holm: float | None = Field(None, description="Holm-adjusted over the family.")
    p_bh: float | None = Field(None, description="Benjamini-Hochberg (FDR) adjusted.")
    d_z: float | None = Field(None, description="Paired effect: mean difference / its SD.")
    d_z_ci_low: float | None = None
    d_z_ci_high: float | None = None
    hedges_g: float | None = Field(None, description="Bias-corrected standardised difference.")
    hedges_g_ci_low: float | None = None
    hedges_g_ci_high: float | None = None
    boot_ci_low: float | None = Field(
        None,
        description="BCa bootstrap interval of mean_diff over seeds (n >= 3; with bootstrap=true).",
    )
    boot_ci_high: float | None = None
    boot_examples_ci_low: float | None = Field(
        None,
        description="With bootstrap=true and metric test/acc: a percentile interval of "
        "mean_diff resampling the paired seeds and the shared test examples both (n >= 3).",
    )
    boot_examples_ci_high: float | None = None
    margin: float | None = Field(None, description="The equivalence margin asked for.")
    tost_p: float | None = Field(
        None, description="TOST p-value that |difference| < margin (small: equivalent)."
    )
    flags: list[str] = Field(
        default_factory=list, description="too_few, zero_variance: why a figure is missing."
    )


class Family(BaseModel):
    """The comparisons the adjusted p-values are corrected over, declared by the request."""

    kind: Literal["baseline", "all_pairs"]
    size: int = Field(description="Comparisons with a p-value: the m of the correction.")
    alpha: float = 0.05


class RungRow(BaseModel):
    """One rung of an adaptive sweep: how many members reached it, went on, were pruned."""

    rung: int
    resource: int = Field(description="In the search's unit (epochs or steps).")
    step: int | None = Field(description="The step its members pause at; null: the end.")
    reached: int = Field(description="Members that trained to it (paused, pruned or past).")
    waiting: int = Field(description="Paused there, waiting for the decision.")
    promoted: int
    pruned: int


def experiment_count(grid: Mapping[str, Sequence[Any]], seeds: Sequence[int]) -> int:
    """Experiments in a sweep: one per grid point and seed."""
    return math.prod(len(v) for v in grid.values()) * len(seeds)


def sweep_status(counts: Mapping[str, int], trials_left: int = 0) -> str:
    """One status for the sweep, derived from its experiments' status counts (and, for an
    Optuna search, the trials it has yet to ask: it runs until they are asked)."""
    present = {s for s, n in counts.items() if n}
    if trials_left and not present & PENDING:
        return Status.running.value
    if present & PENDING:
        return Status.queued.value if present <= {Status.queued.value} else Status.running.value
    for outcome in (Status.failed, Status.cancelled):  # pruned is a search's normal end
        if outcome.value in present:
            return outcome.value
    return Status.succeeded.value


class SweepSummary(_Read):
    # Read from a `Sweep` row; the context holds what is not a column: its experiments'
    # `status_counts` (and, for SweepRead, the aggregates).

    id: str
    name: str
    created_at: datetime
    grid: dict[str, list[Any]]
    seeds: list[int]
    metric: str
    baseline: dict[str, Any] | None
    status_counts: dict[str, int]
    packing: PackingSpec | None = None
    labels: dict[str, str] | None = Field(None, description="Arm label -> its printed name.")
    n_trials: int | None = Field(None, description="An Optuna search's trials (planned).")
    trials_left: int = Field(
        0, description="An Optuna search's trials not asked yet (it runs until they are)."
    )

    @computed_field(  # type: ignore[prop-decorator]
        description="From its experiments: queued until one starts, running while any is"
        " pending, then failed if any failed, else cancelled if any was, else succeeded."
    )
    @property
    def status(self) -> str:
        return sweep_status(self.status_counts, self.trials_left)

    @computed_field(description="Number of experiments.")  # type: ignore[prop-decorator]
    @property
    def size(self) -> int:
        if self.n_trials is not None:  # an Optuna search: one member per trial and seed
            return self.n_trials * len(self.seeds)
        return experiment_count(self.grid, self.seeds)


class SweepRead(SweepSummary):
    # The context also holds the experiments, their aggregates, and the `metric` and
    # `baseline` point they were aggregated for (the request's, else the sweep's).
    base_spec: dict[str, Any]
    fork: dict[str, Any] | None = Field(None, description="A fork sweep's start (SweepFork).")
    search: dict[str, Any] | None = Field(None, description="An adaptive sweep's SearchSpec.")
    rungs: list[RungRow] = Field(
        default_factory=list, description="An adaptive sweep's rungs, first to last."
    )
    experiments: list[SweepExperiment]
    aggregate: list[ArmRow]
    comparisons: list[Comparison]
    family: Family | None = Field(
        None, description="What comparisons' p_holm and p_bh are adjusted over."
    )
    dropped_params: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Arm label -> base-spec params its unit or schedule kind does not take,"
        " left out of its experiments' specs (e.g. a base `sigma` for `relu`).",
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def confidence(self) -> float:
        return CONFIDENCE


class SweepList(BaseModel):
    items: list[SweepSummary]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")
