"""Sweep use cases: expand a grid into experiments, aggregate them (flush only)."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import rungs as rungs_
from core import search, trials
from core.dispatch import send_runs
from core.examples import decode_hits
from core.settings import Settings
from core.spec import ExperimentSpec, forks
from core.store import experiments as experiments_repo
from core.store import metrics as metrics_repo
from core.store import packs
from core.store import sweeps as repo
from core.store.db import after_commit
from core.store.models import TERMINAL, Experiment, Status, Sweep
from service import limits, owners
from service.auth import Principal
from service.errors import InvalidSpec
from service.experiments.service import check_names
from service.sweeps import forking, stats
from service.sweeps.forking import Member
from service.sweeps.grid import (
    Point,
    dropped_params,
    expand,
    experiment_name,
    label,
    point_errors,
    point_spec,
    points,
)
from service.sweeps.schemas import (
    PENDING,
    ArmRow,
    Comparison,
    RungRow,
    SweepCreate,
    SweepExperiment,
    SweepRead,
    SweepSummary,
    canonical,
    experiment_count,
)

TEST_ACC = "test/acc"  # the metric a run's stored per-example hits reproduce

# --- use cases --------------------------------------------------------------------------


def create(
    *, session: Session, settings: Settings, body: SweepCreate, principal: Principal
) -> SweepRead:
    """Insert the sweep and all its experiments (the request commits them together).

    Cheap checks first: the sweep's size and the owner's queue cap from the grid alone, then
    each member's spec and the key's priority, and only then the limits that build every
    point's model (seconds for a large grid). An owner at the cap is refused at once, with
    the cap's error even when a member's spec is also wrong.
    """
    if body.search is not None and body.search.kind == "optuna":
        return _create_search(session=session, settings=settings, body=body, principal=principal)
    owner_id = principal.owner_id
    if body.fork is None:
        assert body.base_spec is not None and body.seeds is not None
        count = experiment_count(body.grid, body.seeds)
        limits.check_sweep_size(count, settings)
        limits.refuse_if_queue_full(session, owner_id, count, settings)
        members = [
            Member(point, spec.seed, spec) for point, specs in expand(body) for spec in specs
        ]
        base_spec, grid, seeds = body.base_spec, body.grid, body.seeds
    else:
        # A fork of a sweep has at least one member per grid point: a lower bound to refuse on.
        count = experiment_count(body.grid, body.seeds or [0])
        limits.check_sweep_size(count, settings)
        limits.refuse_if_queue_full(session, owner_id, count, settings)
        plan = forking.plan(session=session, settings=settings, principal=principal, body=body)
        limits.check_sweep_size(len(plan.members), settings)
        limits.refuse_if_queue_full(session, owner_id, len(plan.members), settings)
        members = plan.members
        base_spec, grid, seeds = plan.base_spec, plan.grid, plan.seeds
    priority = max(m.spec.priority for m in members)
    field = "base_spec.priority" if body.fork is None else "priority"
    limits.check_priority(priority, owners.max_priority(session, principal), field=field)
    sizes = {}
    for m in members:  # seeds do not change the size of a run
        if label(m.point) not in sizes:
            sizes[label(m.point)] = limits.check_spec(m.spec, settings).total_bytes
    limits.check_queue(session, owner_id, len(members), settings)
    sweep = repo.create(
        session,
        name=body.name,
        owner_id=owner_id,
        metric=body.metric or default_metric([m.spec for m in members]),
        baseline=body.baseline,
        base_spec=base_spec,
        grid=grid,
        seeds=seeds,
    )
    if body.fork is not None:
        sweep.fork = plan.fork
    sweep.labels = _labels(body.labels, [label(p) for p in points(grid)])
    if body.search is not None:
        sweep.search = _with_start(body.search.model_dump(), [m.spec for m in members], sweep.fork)
    rows = []
    for m in members:
        row = experiments_repo.create(
            session,
            spec=m.spec,
            owner_id=owner_id,
            sweep_id=sweep.id,
            memory_bytes=sizes[label(m.point)],
            fork=m.fork,
        )
        row.sweep_point, row.sweep_arm, row.sweep_seed = m.point, label(m.point), m.seed
        if sweep.search is not None:  # every member starts bound for the first rung
            row.rung, row.rung_step = 0, search.first_pause(sweep.search, row.spec)
        experiments_repo.mark_enqueued(session, row.id)
        rows.append(row)
    # Unsent ones (the broker down) are sent once it answers again (core/dispatch.py).
    after_commit(session, partial(send_runs, settings, [row.id for row in rows]))
    if priority > 0:
        after_commit(session, partial(owners.preempt_now, settings))
    if body.packing is not None:
        sweep.packing = body.packing.model_dump()
        packs.assign_packs(session, rows, max_members=body.packing.max_members)
    return view(session=session, sweep=sweep, metric=None, baseline=None)


def default_metric(specs: Sequence[ExperimentSpec]) -> str:
    """A sweep's metric when its request names none: `val/acc` where every member holds out a
    validation split, so that arms are ranked and compared on data the test metric is not
    measured on; `test/acc` where one does not (it would have no val/acc)."""
    if specs and all(spec.dataset.val_fraction > 0 for spec in specs):
        return "val/acc"
    return TEST_ACC


def _create_search(
    *, session: Session, settings: Settings, body: SweepCreate, principal: Principal
) -> SweepRead:
    """An Optuna search: the sweep, and the first trials its sampler asks (core/trials.py);
    the rest are asked as trials end. Every edge of the space is validated now, each as the
    trial a worker would make of it: the base spec at the point, or a fork sweep's parent
    forked with the point as overrides."""
    assert body.search is not None and body.search.space is not None
    assert body.search.n_trials is not None and body.search.parallel is not None
    if body.labels:
        raise InvalidSpec(
            "labels: an optuna search's arms are its trials, named when asked",
            errors=[{"path": "labels", "message": "not for an optuna search"}],
        )
    search_ = body.search.model_dump()
    fork: dict[str, Any] | None = None
    if body.fork is None:
        assert body.seeds is not None and body.base_spec is not None
        base_spec, seeds = body.base_spec, body.seeds
    else:
        start = forking.search_start(
            session=session, settings=settings, principal=principal, body=body
        )
        base_spec, seeds, fork = start.base_spec, start.seeds, start.fork
    limits.check_sweep_size(body.search.n_trials * len(seeds), settings)
    first = min(body.search.parallel, body.search.n_trials) * len(seeds)
    limits.check_queue(session, principal.owner_id, first, settings)
    errors: list[dict[str, Any]] = []
    specs: list[ExperimentSpec] = []
    for corner in trials.corners(search_["space"]):
        where = f"search.space[{label(corner)}]"
        if fork is None:
            doc = point_spec(body, 0, corner, seeds[0])
            try:
                spec = ExperimentSpec.model_validate(doc)
            except (ValidationError, ValueError) as exc:
                errors += point_errors(where, doc, exc)
                continue
        else:
            try:
                spec, _ = trials.member_spec(
                    sweep_name=body.name,
                    base_spec=base_spec,
                    fork=fork,
                    number=0,
                    point=corner,
                    seed=seeds[0],
                )
            except forks.ForkError as exc:
                errors.append({"path": f"{where}.{exc.path}", "message": exc.message})
                continue
        specs.append(spec)
        limits.check_spec(spec, settings)
        field = "base_spec.priority" if fork is None else "priority"
        limits.check_priority(spec.priority, owners.max_priority(session, principal), field=field)
    if errors:
        raise InvalidSpec(
            "; ".join(f"{e['path']}: {e['message']}" for e in errors[:5]), errors=errors
        )
    sweep = repo.create(
        session,
        name=body.name,
        owner_id=principal.owner_id,
        metric=body.metric or default_metric(specs),
        baseline=body.baseline,
        base_spec=base_spec,
        grid={},
        seeds=seeds,
    )
    sweep.fork = fork
    if body.packing is not None:  # before the first ask: its trials are packed as asked
        sweep.packing = body.packing.model_dump()
    sweep.search = _with_start(search_, specs, fork)
    after_commit(session, partial(send_runs, settings, search.decide(session, sweep.id)))
    return view(session=session, sweep=sweep, metric=None, baseline=None)


def cancel(*, session: Session, sweep: Sweep) -> SweepRead:
    """Cancel every member that has not ended (a paused one at once); an Optuna search also
    stops asking. Under the sweep's row lock, so no rung decision or ask runs beside it."""
    session.scalars(select(Sweep).where(Sweep.id == sweep.id).with_for_update()).first()
    if sweep.search and sweep.search.get("kind") == "optuna":
        sweep.search = {**sweep.search, "stopped": True}
    for exp in repo.experiments_of(session, sweep.id):
        if Status(exp.status) not in TERMINAL:
            experiments_repo.request_cancel(session, exp)
    return view(session=session, sweep=sweep, metric=None, baseline=None)


def _labels(labels: dict[str, str] | None, arms: list[str]) -> dict[str, str] | None:
    """The sweep's `labels`, each naming one of its arms (a 422 lists them otherwise)."""
    unknown = sorted(set(labels or {}) - set(arms))
    if unknown:
        valid = ", ".join(arms[:20]) + (" ..." if len(arms) > 20 else "")
        message = f"{unknown[0]!r} is not an arm of the sweep; its arms: {valid}"
        raise InvalidSpec(f"labels: {message}", errors=[{"path": "labels", "message": message}])
    return labels or None


def _with_start(
    search_: dict[str, Any], specs: Sequence[Any], fork: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The search with where its rungs count from: a fork sweep's `start_step` (its rungs
    count from the fork, core/rungs.py), and `compare_from_step`, where `compare_after` lets
    the first rung be (over the steps after the fork when it restarts the noise schedule)."""
    out = dict(search_)
    if fork:
        out["start_step"] = int(fork["at_step"])
    after = search_.get("compare_after")
    if after is None:
        return out
    docs = [s if isinstance(s, dict) else s.model_dump(mode="json") for s in specs]
    restart = fork is not None and fork.get("noise_clock") == "restart"
    start = out.get("start_step", 0)
    out["compare_from_step"] = rungs_.compare_from_step(after, docs, start=start, restart=restart)
    return out


def list_page(
    *, session: Session, limit: int, cursor: str | None, owner_id: str | None
) -> tuple[list[SweepSummary], str | None]:
    """One page, newest first, and the cursor of the next (None on the last page)."""
    rows, next_cursor = repo.list_page(session, limit=limit, cursor=cursor, owner_id=owner_id)
    counts = repo.status_counts(session, [r.id for r in rows])
    return [_summary(r, counts[r.id]) for r in rows], next_cursor


def _summary(sweep: Sweep, counts: dict[str, int]) -> SweepSummary:
    return SweepSummary.model_validate(sweep, context={"status_counts": counts})


# --- aggregation ------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok and math.isfinite(value) else None


def metric_values(
    session: Session, experiments: Sequence[Experiment], metric: str
) -> dict[str, float]:
    """experiment id -> the metric: its summary's value, else the last reported point."""
    values = {}
    for exp in experiments:
        value = _number((exp.summary or {}).get(metric))
        if value is not None:
            values[exp.id] = value
    missing = [exp.id for exp in experiments if exp.id not in values]
    values.update(repo.last_values(session, missing, metric))
    return values


def baseline_index(pts: list[Point], wanted: Point | str | None) -> int:
    """The index of the baseline point: given as a (partial) point, a label, or the first."""
    if wanted is None:
        return 0
    if isinstance(wanted, str):
        if not wanted.lstrip().startswith("{"):
            found = [i for i, p in enumerate(pts) if label(p) == wanted]
            return _one(found, wanted)
        try:
            wanted = json.loads(wanted)
        except ValueError:
            wanted = None
        if not isinstance(wanted, dict):
            raise InvalidSpec("baseline: give a point's label or a JSON object of grid values")
    want = {k: canonical(v) for k, v in wanted.items()}
    found = [
        i
        for i, p in enumerate(pts)
        if all(k in p and canonical(p[k]) == v for k, v in want.items())
    ]
    return _one(found, label(wanted))


def _one(found: list[int], wanted: str) -> int:
    if len(found) != 1:
        how = "no grid point" if not found else f"{len(found)} grid points"
        raise InvalidSpec(
            f"baseline {wanted!r} matches {how}; give one point, e.g. its `label`",
            errors=[{"path": "baseline", "message": f"matches {how}", "type": "value_error"}],
        )
    return found[0]


def view(
    *,
    session: Session,
    sweep: Sweep,
    metric: str | None,
    baseline: str | None,
    family: str = "baseline",
    margin: float | None = None,
    bootstrap: bool = False,
) -> SweepRead:
    """The sweep with its experiments, one aggregate row per point, and the comparisons of
    the declared `family` (every arm with the baseline, or all pairs)."""
    asked, metric = metric, metric or sweep.metric
    pts = arms_of(sweep)
    base = baseline_index(pts, baseline if baseline is not None else sweep.baseline)
    everyone = repo.experiments_of(session, sweep.id)
    where = _positions(sweep, pts, everyone)
    exps = [e for e in everyone if e.id in where]
    values = metric_values(session, exps, metric)
    if asked and not values and any(Status(e.status) in TERMINAL for e in exps):
        known = set(metrics_repo.names(session, [e.id for e in exps]))
        known |= {k for e in exps for k, v in (e.summary or {}).items() if _number(v) is not None}
        check_names([asked], sorted(known), field="metric")
    ladder = _ladder(sweep, exps)
    steps = [r.step for r in ladder if r.step is not None]  # where a member can be promoted
    rows, arms, counts = _collect(exps, where, pts, values, steps)
    hits = None  # the stored hits are the test split's accuracy at the last evaluation
    if bootstrap and metric == TEST_ACC:
        hits = _example_hits(session, exps, where, pts, values)
    over = {
        "status_counts": dict(Counter(e.status for e in exps)),
        "metric": metric,  # the one aggregated: the sweep's, or the request's `metric=`
        "baseline": pts[base],
        "experiments": rows,
        "aggregate": [
            _arm(p, arms[i], counts[i], None if hits is None else hits[i])
            for i, p in enumerate(pts)
        ],
        **_comparisons(
            pts, arms, counts, base, family=family, margin=margin, bootstrap=bootstrap, hits=hits
        ),
        "rungs": _rungs(ladder, exps),
        "search": _search_view(sweep.search),
        "dropped_params": {
            label(p): dropped for p in pts if (dropped := dropped_params(sweep.base_spec, p))
        },
    }
    return SweepRead.model_validate(sweep, context=over)


def arms_of(sweep: Sweep) -> list[Point]:
    """The sweep's points: its grid's, or an Optuna search's trials in the order asked."""
    if sweep.search and sweep.search.get("kind") == "optuna":
        return [t["point"] for t in sweep.search.get("trials", [])]
    return points(sweep.grid)


def _search_view(search: dict[str, Any] | None) -> dict[str, Any] | None:
    """The search as stored, its trials as their points (the sampler's state left out)."""
    if not search or "trials" not in search:
        return search
    return {**search, "trials": [t["point"] for t in search["trials"]]}


def _ladder(sweep: Sweep, exps: Sequence[Experiment]) -> list[search.Rung]:
    """An adaptive sweep's rungs, as core/search.py decides them (its first member's)."""
    if not sweep.search or not exps or search.halving(sweep.search) is None:
        return []
    return search.rungs(sweep.search, exps[0].spec)


def _rungs(ladder: list[search.Rung], exps: Sequence[Experiment]) -> list[RungRow]:
    """An adaptive sweep's rungs: who reached each, waits there, went on or was pruned."""
    rows = []
    for r in ladder:
        at = [e for e in exps if (e.rung or 0) == r.index]
        past = [e for e in exps if (e.rung or 0) > r.index]
        stopped = [e for e in at if e.status in (Status.paused.value, Status.pruned.value)]
        done = [e for e in at if e.status == Status.succeeded.value and r.step is None]
        rows.append(
            RungRow(
                rung=r.index,
                resource=r.resource,
                step=r.step,
                reached=len(past) + len(stopped) + len(done),
                waiting=sum(e.status == Status.paused.value for e in at),
                promoted=len(past),
                pruned=sum(e.status == Status.pruned.value for e in at),
            )
        )
    return rows


def _positions(
    sweep: Sweep, pts: list[Point], exps: Sequence[Experiment]
) -> dict[str, tuple[int, int]]:
    """experiment id -> (point index, seed): from its columns, else (older rows) its name."""
    by_label = {label(p): i for i, p in enumerate(pts)}
    by_name = {
        experiment_name(sweep.name, i, p, s): (i, s) for i, p in enumerate(pts) for s in sweep.seeds
    }
    where = {}
    for exp in exps:
        if exp.sweep_arm is not None and exp.sweep_seed is not None:
            if exp.sweep_arm in by_label:
                where[exp.id] = (by_label[exp.sweep_arm], exp.sweep_seed)
        elif exp.name in by_name:
            where[exp.id] = by_name[exp.name]
    return where


def _collect(
    exps: Sequence[Experiment],
    where: dict[str, tuple[int, int]],
    pts: list[Point],
    values: dict[str, float],
    rung_steps: list[int],
) -> tuple[list[SweepExperiment], list[dict[int, float]], list[Counter[str]]]:
    """Experiment rows, and per point: seed -> value of its succeeded runs, status counts.
    A member bound for rung r was promoted at the r rungs before it (`rung_steps`)."""
    arms: list[dict[int, float]] = [{} for _ in pts]
    counts: list[Counter[str]] = [Counter() for _ in pts]
    rows = []
    for exp in exps:
        index, seed = where[exp.id]
        value = values.get(exp.id)
        counts[index][exp.status] += 1
        if exp.status == Status.succeeded.value and value is not None:
            arms[index][seed] = value
        over = {
            "point": pts[index],
            "label": label(pts[index]),
            "seed": seed,
            "value": value,
            "promoted_at": rung_steps[: exp.rung or 0],
        }
        rows.append(SweepExperiment.model_validate(exp, context=over))
    return rows, arms, counts


def _example_hits(
    session: Session,
    exps: Sequence[Experiment],
    where: dict[str, tuple[int, int]],
    pts: list[Point],
    values: dict[str, float],
) -> list[dict[int, np.ndarray]]:
    """Per point: seed -> its succeeded run's per-test-example hits (core/examples.py), for
    the runs whose stored hits give exactly the test/acc aggregated (older runs kept none)."""
    done = [e.id for e in exps if e.status == Status.succeeded.value and e.id in values]
    stored = experiments_repo.example_hits(session, done)
    hits: list[dict[int, np.ndarray]] = [{} for _ in pts]
    for exp_id, raw in stored.items():
        vector = decode_hits(raw)
        if vector is None or not len(vector):
            continue
        if abs(float(vector.mean()) - values[exp_id]) > 1e-9:  # not the run's last evaluation
            continue
        index, seed = where[exp_id]
        hits[index][seed] = vector
    return hits


def _crossed(
    arm: dict[int, np.ndarray] | None, baseline: dict[int, np.ndarray] | None = None
) -> tuple[float | None, float | None]:
    """crossed_bootstrap over an arm's (or a pair's) stored hits; None, None without them."""
    if arm is None:
        return None, None
    rows = stats.crossed_rows(arm, baseline)
    return (None, None) if rows is None else stats.crossed_bootstrap(rows)


def _arm(
    point: Point,
    values: dict[int, float],
    counts: Counter[str],
    hits: dict[int, np.ndarray] | None = None,
) -> ArmRow:
    s = stats.summarize([values[seed] for seed in sorted(values)])
    # Only when every seed counted has its hits: the interval is of the same mean.
    complete = hits is not None and set(hits) == set(values)
    low, high = _crossed(hits if complete else None)
    over = {
        "boot_examples_ci_low": low,
        "boot_examples_ci_high": high,
        "point": point,
        "label": label(point),
        "n_pending": sum(counts[k] for k in PENDING),
        "n_failed": counts[Status.failed.value],
        "n_cancelled": counts[Status.cancelled.value],
        "n_pruned": counts[Status.pruned.value],
        "n_missing": counts[Status.succeeded.value] - s.n,
    }
    return ArmRow.model_validate(s, context=over)


def _comparisons(
    pts: list[Point],
    arms: list[dict[int, float]],
    counts: list[Counter[str]],
    base: int,
    *,
    family: str,
    margin: float | None,
    bootstrap: bool,
    hits: list[dict[int, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """The family's comparisons, each with its p-value adjusted (Holm, and BH) over it, and
    with `hits` (seed -> per-test-example hits, per point) the crossed bootstrap interval of
    each paired difference."""
    if family == "all_pairs":
        pairs = [(i, j) for j in range(len(pts)) for i in range(j + 1, len(pts))]
    else:
        pairs = [(i, base) for i in range(len(pts)) if i != base]
    done = [stats.compare(arms[i], arms[j], margin=margin, bootstrap=bootstrap) for i, j in pairs]
    p = [c.p_value for c in done]
    holm, bh = stats.adjust(p, "holm"), stats.adjust(p, "fdr_bh")
    rows = []
    for (i, j), c, ph, pb in zip(pairs, done, holm, bh, strict=True):
        failed = sum(
            counts[k][s] for k in (i, j) for s in (Status.failed.value, Status.cancelled.value)
        )
        crossed: tuple[float | None, float | None] = (None, None)
        if hits is not None and c.test == "paired_t":
            shared = set(arms[i]) & set(arms[j])
            if shared <= set(hits[i]) and shared <= set(hits[j]):
                crossed = _crossed({s: hits[i][s] for s in shared}, {s: hits[j][s] for s in shared})
        over = {
            **c.__dict__,
            "boot_examples_ci_low": crossed[0],
            "boot_examples_ci_high": crossed[1],
            "point": pts[i],
            "label": label(pts[i]),
            "baseline_label": label(pts[j]),
            "n_failed": failed,
            "n_dropped": c.n_arm + c.n_baseline - 2 * c.n_pairs if c.test == "paired_t" else 0,
            "p_holm": ph,
            "p_bh": pb,
            "flags": list(c.flags),
        }
        rows.append(Comparison.model_validate(over))
    size = sum(x is not None for x in p)
    return {"comparisons": rows, "family": {"kind": family, "size": size}}
