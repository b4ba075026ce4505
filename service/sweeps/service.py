"""Sweep use cases: expand a grid into experiments, aggregate them (flush only)."""

from __future__ import annotations

import copy
import itertools
import json
import math
from collections import Counter
from collections.abc import Sequence
from functools import partial
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

import activations
from activations import schedules
from service import limits
from service.auth import Principal
from service.deps import after_commit
from service.errors import InvalidSpec, LimitExceeded, NotFound
from service.problems import field_path
from service.queue import send_run
from service.settings import Settings
from service.spec import ExperimentSpec
from service.store import experiments as experiments_repo
from service.store import sweeps as repo
from service.store.models import Experiment, Status, Sweep
from service.sweeps import packing, stats
from service.sweeps.schemas import (
    ArmRow,
    Comparison,
    PackingSpec,
    SweepCreate,
    SweepExperiment,
    SweepRead,
    SweepSummary,
    canonical,
)

Point = dict[str, Any]
PENDING = {Status.queued.value, Status.running.value, Status.cancelling.value}
NAME_MAX = 200  # Experiment.name


# --- the grid ---------------------------------------------------------------------------


def points(grid: dict[str, list[Any]]) -> list[Point]:
    """Every combination of the grid's values, first path slowest; {} for an empty grid."""
    paths = list(grid)
    return [dict(zip(paths, combo, strict=True)) for combo in itertools.product(*grid.values())]


def label(point: Point) -> str:
    """`activation.name=relu,activation.params.sigma=0.3`; `base` for the empty point."""
    return ",".join(f"{path}={_show(value)}" for path, value in point.items()) or "base"


def _show(value: Any) -> str:
    # Strings bare, unless they would read as another JSON value ("1", "true").
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value
    return canonical(value)


def experiment_name(sweep_name: str, index: int, point: Point, seed: int) -> str:
    """The experiment's name; also how a sweep finds which point and seed an experiment is."""
    name = f"{sweep_name}/{label(point)}/seed={seed}"
    return name if len(name) <= NAME_MAX else f"{sweep_name}/point-{index}/seed={seed}"


def _set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = doc
    for i, key in enumerate(parents):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            where = ".".join(parents[: i + 1])
            raise ValueError(f"{where} is {canonical(child)}, not an object")
        node = child
    node[leaf] = copy.deepcopy(value)


def _accepted(section: str, name: Any) -> set[str] | None:
    """Parameter names the chosen unit or schedule kind takes; None when the name is unknown."""
    if section == "activation":
        try:
            return {p.name for p in activations.registry.entry(str(name)).params}
        except (KeyError, ValueError):
            return None
    for row in schedules.catalogue():
        if row["name"] == name:
            return {p["name"] for p in row["params"]}
    return None


def _drop_foreign_params(spec: dict[str, Any], point: Point) -> None:
    """When the grid picks a unit (or schedule kind), drop base params that it does not take."""
    for section, key in (("activation", "name"), ("noise_schedule", "kind")):
        if f"{section}.{key}" not in point or f"{section}.params" in point:
            continue
        block = spec.get(section)
        if not isinstance(block, dict):
            continue
        params = block.get("params")
        accepted = _accepted(section, point[f"{section}.{key}"])
        if not isinstance(params, dict) or accepted is None:
            continue  # validation reports an unknown name or a malformed block
        swept = {p.split(".", 2)[2] for p in point if p.startswith(f"{section}.params.")}
        block["params"] = {k: v for k, v in params.items() if k in accepted or k in swept}


def point_spec(body: SweepCreate, index: int, point: Point, seed: int) -> dict[str, Any]:
    """The spec document of one experiment: base spec, grid values, seed, name and tags."""
    spec = copy.deepcopy(body.base_spec)
    for path, value in point.items():
        _set_path(spec, path, value)
    _drop_foreign_params(spec, point)
    spec["seed"] = seed
    spec["name"] = experiment_name(body.name, index, point, seed)
    base_tags = spec.get("tags", [])
    if isinstance(base_tags, list):
        spec["tags"] = list(dict.fromkeys([*base_tags, *body.tags]))
    return spec


def _point_errors(where: str, spec: dict[str, Any] | None, exc: Exception) -> list[dict]:
    if not isinstance(exc, ValidationError):
        return [{"path": where, "message": str(exc), "type": "value_error"}]
    return [
        {
            "path": f"{where}.{field_path(('body', *err['loc']), spec)}",
            "message": str(err["msg"]).removeprefix("Value error, "),
            "type": err["type"],
        }
        for err in exc.errors()
    ]


def expand(body: SweepCreate) -> list[tuple[Point, list[ExperimentSpec]]]:
    """Every point with its validated specs, one per seed; InvalidSpec names each bad point."""
    out: list[tuple[Point, list[ExperimentSpec]]] = []
    errors: list[dict] = []
    for index, point in enumerate(points(body.grid)):
        where = f"grid[{label(point)}]" if point else "base_spec"
        spec: dict[str, Any] | None = None
        try:
            specs = []
            for seed in body.seeds:
                spec = point_spec(body, index, point, seed)
                specs.append(ExperimentSpec.model_validate(spec))
        except (ValidationError, ValueError) as exc:
            errors.extend(_point_errors(where, spec, exc))
            continue
        out.append((point, specs))
    if errors:
        detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:5])
        raise InvalidSpec(detail, errors=errors)
    return out


# --- use cases --------------------------------------------------------------------------


def size(grid: dict[str, list[Any]], seeds: Sequence[int]) -> int:
    return math.prod(len(v) for v in grid.values()) * len(seeds)


def create(
    *, session: Session, settings: Settings, body: SweepCreate, owner_id: str | None
) -> SweepRead:
    """Insert the sweep and all its experiments (the request commits them together)."""
    total = size(body.grid, body.seeds)
    if total > settings.max_sweep_size:
        raise LimitExceeded(
            f"a sweep of {total} experiments is too large",
            setting="ACTLAB_MAX_SWEEP_SIZE",
            limit=settings.max_sweep_size,
        )
    expanded = expand(body)
    for _, specs in expanded:
        limits.check_spec(specs[0], settings)  # seeds do not change the size of a run
    limits.check_queue(experiments_repo.count_queued(session, owner_id), total, settings)
    sweep = repo.create(
        session,
        name=body.name,
        owner_id=owner_id,
        base_spec=body.base_spec,
        grid=body.grid,
        seeds=body.seeds,
        metric=body.metric,
        baseline=body.baseline,
    )
    rows = []
    for _, specs in expanded:
        for spec in specs:
            row = experiments_repo.create(session, spec=spec, owner_id=owner_id, sweep_id=sweep.id)
            experiments_repo.mark_enqueued(session, row.id)
            rows.append(row)
            # One hook per id: a failed send does not stop the others (the reaper re-sends).
            after_commit(session, partial(send_run, settings, row.id))
    if body.packing is not None:
        sweep.packing = body.packing.model_dump()
        packing.assign_packs(session, rows, max_members=body.packing.max_members)
    return view(session=session, sweep=sweep, metric=None, baseline=None)


def get_sweep(*, session: Session, sweep_id: str, principal: Principal) -> Sweep:
    """The sweep, or NotFound (also for another owner's: its existence is not disclosed)."""
    sweep = repo.get(session, sweep_id)
    if sweep is None or not principal.can_see(sweep.owner_id):
        raise NotFound(f"sweep {sweep_id!r} not found")
    return sweep


def get(
    *,
    session: Session,
    sweep_id: str,
    principal: Principal,
    metric: str | None,
    baseline: str | None,
) -> SweepRead:
    sweep = get_sweep(session=session, sweep_id=sweep_id, principal=principal)
    return view(session=session, sweep=sweep, metric=metric, baseline=baseline)


def list_page(
    *, session: Session, limit: int, cursor: str | None, owner_id: str | None
) -> tuple[list[SweepSummary], str | None]:
    """One page, newest first, and the cursor of the next (None on the last page)."""
    rows = list(repo.list_page(session, limit=limit + 1, cursor=cursor, owner_id=owner_id))
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    rows = rows[:limit]
    counts = repo.status_counts(session, [r.id for r in rows])
    return [_summary(r, counts[r.id]) for r in rows], next_cursor


def _summary(sweep: Sweep, counts: dict[str, int]) -> SweepSummary:
    return SweepSummary(
        id=sweep.id,
        name=sweep.name,
        created_at=sweep.created_at,
        grid=sweep.grid,
        seeds=sweep.seeds,
        metric=sweep.metric,
        baseline=sweep.baseline,
        size=size(sweep.grid, sweep.seeds),
        status_counts=counts,
        packing=PackingSpec.model_validate(sweep.packing) if sweep.packing else None,
    )


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


def view(*, session: Session, sweep: Sweep, metric: str | None, baseline: str | None) -> SweepRead:
    """The sweep with its experiments, one aggregate row per point, and paired comparisons."""
    metric = metric or sweep.metric
    pts = points(sweep.grid)
    base = baseline_index(pts, baseline if baseline is not None else sweep.baseline)
    where = {
        experiment_name(sweep.name, i, p, s): (i, s) for i, p in enumerate(pts) for s in sweep.seeds
    }
    exps = [e for e in repo.experiments_of(session, sweep.id) if e.name in where]
    rows, arms, counts = _collect(exps, where, pts, metric_values(session, exps, metric))
    summary = _summary(sweep, dict(Counter(e.status for e in exps)))
    return SweepRead(
        **summary.model_dump(exclude={"baseline"}),
        baseline=pts[base],
        base_spec=sweep.base_spec,
        confidence=stats.CONFIDENCE,
        experiments=rows,
        aggregate=[_arm(p, arms[i], counts[i]) for i, p in enumerate(pts)],
        comparisons=[
            _compare(p, arms[i], pts[base], arms[base]) for i, p in enumerate(pts) if i != base
        ],
    )


def _collect(
    exps: Sequence[Experiment],
    where: dict[str, tuple[int, int]],
    pts: list[Point],
    values: dict[str, float],
) -> tuple[list[SweepExperiment], list[dict[int, float]], list[Counter[str]]]:
    """Experiment rows, and per point: seed -> value of its succeeded runs, status counts."""
    arms: list[dict[int, float]] = [{} for _ in pts]
    counts: list[Counter[str]] = [Counter() for _ in pts]
    rows = []
    for exp in exps:
        index, seed = where[exp.name or ""]
        value = values.get(exp.id)
        counts[index][exp.status] += 1
        if exp.status == Status.succeeded.value and value is not None:
            arms[index][seed] = value
        rows.append(
            SweepExperiment(
                id=exp.id,
                point=pts[index],
                label=label(pts[index]),
                seed=seed,
                status=exp.status,
                status_reason=exp.status_reason,
                value=value,
                pack_id=exp.pack_id,
            )
        )
    return rows, arms, counts


def _arm(point: Point, values: dict[int, float], counts: Counter[str]) -> ArmRow:
    s = stats.summarize([values[seed] for seed in sorted(values)])
    return ArmRow(
        point=point,
        label=label(point),
        n=s.n,
        mean=s.mean,
        std=s.std,
        ci_low=s.ci_low,
        ci_high=s.ci_high,
        n_pending=sum(counts[k] for k in PENDING),
        n_failed=counts[Status.failed.value],
        n_cancelled=counts[Status.cancelled.value],
        n_missing=counts[Status.succeeded.value] - s.n,
    )


def _compare(
    point: Point, values: dict[int, float], base: Point, base_values: dict[int, float]
) -> Comparison:
    p = stats.paired(values, base_values)
    return Comparison(
        point=point,
        label=label(point),
        baseline_label=label(base),
        n_pairs=p.n_pairs,
        mean_diff=p.mean_diff,
        ci_low=p.ci_low,
        ci_high=p.ci_high,
        p_value=p.p_value,
    )
