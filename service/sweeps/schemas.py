"""HTTP schemas of sweeps (the table lives in service.store.models)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from service.spec.experiment import CANONICAL_EXAMPLE, Tag
from service.spec.numbers import Int

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
    "metric": "test/acc",
    "baseline": {"activation.name": "relu"},
    "tags": ["noise-study"],
}

Seed = Annotated[Int, Field(ge=0, le=2**31 - 1)]


def canonical(value: Any) -> str:
    """One string per JSON value, to compare grid values and detect duplicates."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class PackingSpec(BaseModel):
    """Train up to `max_members` packable experiments of the sweep as one stacked model."""

    model_config = ConfigDict(extra="forbid", strict=True)

    max_members: Int = Field(
        16, ge=1, le=256, description="Most experiments per pack (1 packs nothing)."
    )


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
    base_spec: dict[str, Any] = Field(description="A spec, minus what the grid and seeds set.")
    grid: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Dotted spec path -> values; every combination is one grid point.",
        examples=[{"activation.name": ["relu", "noisy_relu"], "noise_schedule.kind": ["cosine"]}],
    )
    seeds: list[Seed] = Field(min_length=1, description="Each grid point runs once per seed.")
    metric: str = Field("test/acc", min_length=1, max_length=128, description="Aggregated.")
    baseline: dict[str, Any] | None = Field(
        None, description="The grid point others are compared with; default the first point."
    )
    tags: list[Tag] = Field(default_factory=list, max_length=32)
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
    def _seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be unique")
        return seeds

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


class SweepExperiment(BaseModel):
    id: str
    point: dict[str, Any]
    label: str
    seed: int
    status: str
    status_reason: str | None
    value: float | None = Field(description="The metric: the summary's, else its last point.")
    pack_id: str | None = Field(None, description="The pack it trains in; null when alone.")


class ArmRow(BaseModel):
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
    n_missing: int = Field(description="Succeeded, but the metric was never reported.")


class Comparison(BaseModel):
    """An arm minus the baseline, paired by seed (seeds where both have a value)."""

    point: dict[str, Any]
    label: str
    baseline_label: str
    n_pairs: int
    mean_diff: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None = Field(
        description="Two-sided paired t-test; null for n_pairs < 2; 1.0/0.0 for zero variance."
    )


class SweepSummary(BaseModel):
    id: str
    name: str
    status: str = Field(
        description="From its experiments: queued until one starts, running while any is"
        " pending, then failed if any failed, else cancelled if any was, else succeeded."
    )
    created_at: datetime
    grid: dict[str, list[Any]]
    seeds: list[int]
    metric: str
    baseline: dict[str, Any] | None
    size: int = Field(description="Number of experiments.")
    status_counts: dict[str, int]
    packing: PackingSpec | None = None


class SweepRead(SweepSummary):
    base_spec: dict[str, Any]
    confidence: float
    experiments: list[SweepExperiment]
    aggregate: list[ArmRow]
    comparisons: list[Comparison]
    dropped_params: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Arm label -> base-spec params its unit or schedule kind does not take,"
        " left out of its experiments' specs (e.g. a base `sigma` for `relu`).",
    )


class SweepList(BaseModel):
    items: list[SweepSummary]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")
