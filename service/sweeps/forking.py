"""Fork sweeps: a continuation study whose experiments fork a parent (or each member of a
sweep) at one step, each with a grid point as its overrides (docs/forks.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from core.settings import Settings
from core.spec import ExperimentSpec, forks
from core.store import sweeps as sweeps_repo
from core.store.models import Experiment, Status, Sweep
from service.access import get_visible
from service.auth import Principal
from service.errors import InvalidSpec
from service.experiments import forks as experiment_forks
from service.sweeps.grid import Point, experiment_name, label, points
from service.sweeps.schemas import SweepCreate


@dataclass(frozen=True)
class Member:
    """One experiment of a sweep: its grid point, seed, spec and (a fork's) start."""

    point: Point
    seed: int
    spec: ExperimentSpec
    fork: dict[str, Any] | None = None


@dataclass(frozen=True)
class Plan:
    """What the sweep row stores (its grid and seeds span every member) and its members."""

    base_spec: dict[str, Any]
    grid: dict[str, list[Any]]
    seeds: list[int]
    members: list[Member]
    fork: dict[str, Any]


def plan(*, session: Session, settings: Settings, principal: Principal, body: SweepCreate) -> Plan:
    """The sweep's members, each a fork of its parent; 422s name `fork.*` or `grid.<path>`."""
    source = body.fork
    assert source is not None
    for path in body.grid:
        try:
            forks.check_path(path)
        except forks.ForkError as exc:
            raise _invalid(f"grid.{path}", exc.message) from None
    record = source.model_dump(exclude_none=True)
    if source.experiment_id is not None:
        parent = get_visible(session, Experiment, source.experiment_id, principal)
        seeds = body.seeds or [int(parent.spec["seed"])]
        parents: list[tuple[Experiment, Point, int]] = [(parent, {}, seed) for seed in seeds]
        grid, base_spec = dict(body.grid), _base(parent.spec)
    else:
        assert source.sweep_id is not None
        sweep = get_visible(session, Sweep, source.sweep_id, principal)
        parents, skipped = _sweep_parents(session, settings, sweep, source.at_step)
        record["skipped"] = skipped
        grid, base_spec, seeds = {**sweep.grid, **body.grid}, sweep.base_spec, list(sweep.seeds)
    grid_points = points(body.grid)
    members: list[Member] = []
    kept: dict[str, dict[int, str]] = {}  # one parent's steps, read once for all its seeds
    for parent, parent_point, seed in parents:
        if parent.id not in kept:
            kept[parent.id] = _kept_at(session, settings, parent, source.at_step)
        steps = kept[parent.id]
        for grid_point in grid_points:
            point = {path: {**parent_point, **grid_point}[path] for path in grid}
            index = points(grid).index(point)
            overrides = {
                **grid_point,
                "seed": seed,
                "name": experiment_name(body.name, index, point, seed),
                "tags": list(dict.fromkeys([*parent.spec.get("tags", []), *body.tags])),
            }
            try:
                spec = forks.apply(parent.spec, overrides)
                forks.check_step(spec, source.at_step)
            except forks.ForkError as exc:
                where = f"grid[{label(grid_point)}].{exc.path}" if grid_point else exc.path
                raise _invalid(where, exc.message) from None
            start = {
                "parent_id": parent.id,
                "at_step": source.at_step,
                "overrides": {**grid_point, "seed": seed},
                "noise_clock": source.noise_clock,
                "checkpoint": steps[source.at_step],
            }
            members.append(Member(point, seed, spec, start))
    return Plan(base_spec, grid, seeds, members, record)


@dataclass(frozen=True)
class SearchStart:
    """An Optuna fork sweep's parent: its spec (the trials' base), the seeds, and the record
    the sweep keeps (with the kept checkpoint every trial starts from: trials are made
    later, by workers that do not list checkpoint directories)."""

    base_spec: dict[str, Any]
    seeds: list[int]
    fork: dict[str, Any]


def search_start(
    *, session: Session, settings: Settings, principal: Principal, body: SweepCreate
) -> SearchStart:
    """Where an Optuna fork sweep's trials start: one experiment's kept checkpoint at
    `at_step`, each trial a fork of it with its point as overrides. 422s name `fork.*`, or
    `search.space.<path>` for a path no fork may change."""
    source, search = body.fork, body.search
    assert source is not None and search is not None and search.space is not None
    if source.sweep_id is not None:
        raise _invalid(
            "fork.sweep_id",
            "an optuna search forks one experiment (fork.experiment_id): a trial's value is "
            "the mean over its seeds, and the members of a sweep are other arms, not seeds "
            "of one; fork each member with its own search, or use successive_halving or "
            "asha over the fork's grid",
        )
    for path in search.space:
        try:
            forks.check_path(path)
        except forks.ForkError as exc:
            raise _invalid(f"search.space.{path}", exc.message) from None
    assert source.experiment_id is not None
    parent = get_visible(session, Experiment, source.experiment_id, principal)
    steps = _kept_at(session, settings, parent, source.at_step)
    record = {**source.model_dump(exclude_none=True), "checkpoint": steps[source.at_step]}
    seeds = list(body.seeds or [int(parent.spec["seed"])])
    return SearchStart(_base(parent.spec), seeds, record)


def _sweep_parents(
    session: Session, settings: Settings, sweep: Sweep, at_step: int
) -> tuple[list[tuple[Experiment, Point, int]], list[str]]:
    """The members of `sweep` that can be forked at `at_step` (with their point and seed),
    and the ids of those that cannot (they failed or were cancelled before it)."""
    parents: list[tuple[Experiment, Point, int]] = []
    skipped: list[str] = []
    for exp in sweeps_repo.experiments_of(session, sweep.id):
        if exp.sweep_point is None or exp.sweep_seed is None:
            continue
        if at_step in experiment_forks.available(session, settings, exp):
            parents.append((exp, dict(exp.sweep_point), int(exp.sweep_seed)))
        elif exp.status in (Status.failed.value, Status.cancelled.value):
            skipped.append(exp.id)
        else:
            steps = experiment_forks.available(session, settings, exp)
            listed = ", ".join(map(str, steps)) or "none yet"
            raise _invalid(
                "fork.at_step",
                f"sweep member {exp.id!r} ({exp.status}) kept no checkpoint at step {at_step}; "
                f"kept steps: {listed}",
            )
    if not parents:
        raise _invalid("fork.sweep_id", f"no member of sweep {sweep.id!r} reached step {at_step}")
    parents.sort(key=lambda p: (label(p[1]), p[2]))
    return parents, skipped


def _base(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k not in ("name", "seed")}


def _invalid(path: str, message: str) -> InvalidSpec:
    return InvalidSpec(f"{path}: {message}", errors=[{"path": path, "message": message}])


def _kept_at(
    session: Session, settings: Settings, parent: Experiment, at_step: int
) -> dict[int, str]:
    """The parent's kept checkpoints (step -> path); a 422 on fork.at_step when none is at
    `at_step`."""
    steps = experiment_forks.available(session, settings, parent)
    if at_step not in steps:
        listed = ", ".join(map(str, steps)) or "none"
        raise _invalid(
            "fork.at_step",
            f"experiment {parent.id!r} kept no checkpoint at step {at_step}; kept steps: {listed}",
        )
    return steps
