"""How many seeds a sweep needs, and adding seeds to it without breaking the pairing.

Power is that of the paired t-test the comparisons use (statsmodels' TTestPower, a
one-sample test on the per-seed differences), from the SD of each comparison's observed
differences. The family's correction is taken at its strictest step: alpha / m, which is
Holm's first threshold and Bonferroni's (so the seeds it asks for are enough for every
comparison of the family, and more than Holm needs for all but the smallest p-value).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.dispatch import send_runs
from core.settings import Settings
from core.spec import ExperimentSpec
from core.spec.points import experiment_name
from core.store import experiments as experiments_repo
from core.store import packs
from core.store import sweeps as repo
from core.store.db import after_commit
from core.store.models import Sweep
from service import limits
from service.auth import Principal
from service.errors import Conflict, InvalidSpec
from service.sweeps.schemas import Seed, SweepRead

MAX_SEEDS = 100_000  # what "seeds needed" reports at most: past it, the difference is noise


class PowerRow(BaseModel):
    label: str
    baseline_label: str
    n_pairs: int
    sd_diff: float | None = Field(description="SD of the per-seed differences observed.")
    effect_size: float | None = Field(description="delta / sd_diff (Cohen's d_z to detect).")
    seeds_needed: int | None = Field(
        description="Pairs (seeds) to detect `delta` at `power` and the family's alpha."
    )
    detectable_delta: float | None = Field(
        description="The smallest difference the current pairs detect at `power`."
    )
    note: str | None = None


class PowerRead(BaseModel):
    sweep_id: str
    metric: str
    delta: float
    power: float
    alpha: float
    family: str
    family_size: int
    alpha_per_test: float = Field(description="alpha / family_size (Holm's first step).")
    rows: list[PowerRow]


def power_table(
    view: SweepRead, *, delta: float, power: float, alpha: float, family: str
) -> PowerRead:
    """Seeds needed per comparison for `delta`, and the difference the current seeds detect."""
    arms = {a.label: a for a in view.aggregate}
    values = _values_by_arm(view)
    # The family the comparisons correct over: an arm equal to its baseline on every seed
    # (zero_variance: the same unit under another name) has no test and is not in it.
    size = max(1, sum("zero_variance" not in c.flags for c in view.comparisons))
    per_test = alpha / size
    rows = [
        _row(c.label, c.baseline_label, values, delta=delta, power=power, alpha=per_test)
        for c in view.comparisons
        if c.label in arms
    ]
    return PowerRead(
        sweep_id=view.id, metric=view.metric, delta=delta, power=power, alpha=alpha,
        family=family, family_size=size, alpha_per_test=per_test, rows=rows,
    )  # fmt: skip


def _values_by_arm(view: SweepRead) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for e in view.experiments:
        if e.status == "succeeded" and e.value is not None:
            out.setdefault(e.label, {})[e.seed] = e.value
    return out


def _row(
    label: str,
    base: str,
    values: dict[str, dict[int, float]],
    *,
    delta: float,
    power: float,
    alpha: float,
) -> PowerRow:
    a, b = values.get(label, {}), values.get(base, {})
    seeds = sorted(set(a) & set(b))
    n = len(seeds)
    row: dict[str, Any] = {"label": label, "baseline_label": base, "n_pairs": n}
    empty = {"effect_size": None, "seeds_needed": None, "detectable_delta": None}
    if n < 2:
        return PowerRow(**row, **empty, sd_diff=None, note="fewer than 2 pairs: no variance")
    diff = np.asarray([a[s] - b[s] for s in seeds])
    sd = float(diff.std(ddof=1))
    if sd == 0.0:
        return PowerRow(**row, **empty, sd_diff=0.0, note="zero variance of the differences")
    from statsmodels.stats.power import TTestPower  # ~1 s to import: here, not at API start

    analysis = TTestPower()
    effect = delta / sd
    needed = analysis.solve_power(effect_size=effect, alpha=alpha, power=power, nobs=None)
    detectable = analysis.solve_power(effect_size=None, alpha=alpha, power=power, nobs=n)
    return PowerRow(
        **row,
        sd_diff=sd,
        effect_size=effect,
        seeds_needed=min(MAX_SEEDS, max(2, math.ceil(float(needed)))),
        detectable_delta=float(detectable) * sd if np.isfinite(detectable) else None,
    )


def add_seeds(
    *,
    session: Session,
    settings: Settings,
    sweep: Sweep,
    seeds: list[int],
    principal: Principal,
) -> list[str]:
    """Add `seeds` to every arm of a grid sweep: each new member is its arm's spec with the
    new seed, so arms stay paired seed by seed. The ids are sent once committed."""
    if sweep.search or sweep.fork:
        kind = "an adaptive search" if sweep.search else "a fork sweep"
        raise Conflict(f"seeds cannot be added to {kind}: create a sweep for them")
    taken = sorted(set(seeds) & set(sweep.seeds))
    if taken:
        raise InvalidSpec(
            f"seeds: {taken} already in the sweep",
            errors=[{"path": "seeds", "message": f"{taken} already in the sweep"}],
        )
    members = repo.experiments_of(session, sweep.id)
    template: dict[str, Any] = {}  # one member per arm: its spec is the arm's
    for m in members:
        template.setdefault(m.sweep_arm or m.name or m.id, m)
    limits.check_sweep_size(len(members) + len(template) * len(seeds), settings)
    limits.check_queue(session, principal.owner_id, len(template) * len(seeds), settings)
    locked = select(Sweep).where(Sweep.id == sweep.id).with_for_update()
    session.scalars(locked).first()
    rows = []
    for index, (arm, m) in enumerate(template.items()):
        for seed in seeds:
            doc = {**m.spec, "seed": seed}
            doc["name"] = experiment_name(sweep.name, index, m.sweep_point or {}, seed)
            spec = ExperimentSpec.model_validate(doc)
            row = experiments_repo.create(
                session, spec=spec, owner_id=sweep.owner_id, sweep_id=sweep.id,
                memory_bytes=m.memory_bytes,
            )  # fmt: skip
            row.sweep_point, row.sweep_arm, row.sweep_seed = m.sweep_point, arm, seed
            experiments_repo.mark_enqueued(session, row.id)
            rows.append(row)
    sweep.seeds = [*sweep.seeds, *seeds]
    if sweep.packing:
        packs.assign_packs(session, rows, max_members=sweep.packing["max_members"])
    ids = [r.id for r in rows]
    after_commit(session, partial(send_runs, settings, ids))
    return ids


class SeedsAdd(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    seeds: list[Seed] = Field(min_length=1, max_length=1000, description="New seeds, unique.")
