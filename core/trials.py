"""Model-based search (`search.kind = optuna`): Optuna's samplers pick the next trials, and
the database is the study's only record (docs/search.md).

A trial is one configuration (a point of the search space) run once per sweep seed: its
members are ordinary experiments of the sweep, so fair share, preemption, cancel, retry and
both databases treat them as any other run. What the sampler asked is kept on the sweep
(`search.trials`: each trial's number, point and the sampler's own attributes, which CMA-ES
uses to carry its state); what a trial scored is read from its members' metrics. Before each
ask the study is rebuilt from those two in trial order, and the sampler is seeded from the
sweep's seed and the trial's number: the same history asks the same next point, and a
process that dies between an ask and its commit loses nothing (the ask is redone).

`advance` keeps `parallel` trials in flight until `n_trials` were asked. It runs where
rung decisions run (core.search.decide): in the worker whenever a member of the sweep stops,
on every reaper pass, and in the API when the sweep is created. With a `halving` block the
trials also pause at rungs and ASHA promotes or prunes them (their members resume from
their checkpoints); a pruned trial is told to the sampler as pruned, with its value at the
rung.

A sweep with `packing` asks its trials a pack at a time: as many as one pack holds (its
members are the trials' seeds), once `parallel` leaves room for them all, and they are
packed as a grid sweep's members are (core.store.packs: only members that may share a pack
do). Asking one trial as each one ends would start every later trial alone. A fork sweep's
trials are forks of its parent at its fork step, the point applied as the fork's overrides.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState, create_trial
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.rungs import first_pause
from core.spec import ExperimentSpec, forks
from core.spec.estimate import footprint
from core.spec.points import Point, experiment_name, label, point_spec
from core.store import experiments as experiments_repo
from core.store import metrics, packs
from core.store.models import Experiment, Status, Sweep

log = logging.getLogger("actlab.search")

SAMPLERS = ("tpe", "cmaes", "gp", "random", "qmc")
RUNNING = (Status.queued.value, Status.running.value, Status.cancelling.value)
WAITING = (*RUNNING, Status.paused.value)  # not finished, for the sampler
TRIAL = "trial"  # a trial's point carries its number under this key (paths have dots)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def distributions(space: dict[str, dict[str, Any]]) -> dict[str, BaseDistribution]:
    """The search space as Optuna's distributions, one per dotted spec path."""
    out: dict[str, BaseDistribution] = {}
    for path, d in space.items():
        if d["type"] == "categorical":
            out[path] = CategoricalDistribution(list(d["choices"]))
        elif d["type"] == "int":
            out[path] = IntDistribution(
                int(d["low"]), int(d["high"]), log=bool(d.get("log")), step=int(d.get("step") or 1)
            )
        else:
            out[path] = FloatDistribution(
                float(d["low"]), float(d["high"]), log=bool(d.get("log")), step=d.get("step")
            )
    return out


def sampler(search: dict[str, Any], number: int) -> optuna.samplers.BaseSampler:
    """The sampler that asks trial `number`: seeded from the sweep's seed and the number, so
    a rebuilt study asks the same point (QMC keeps one seed: its sequence is the number)."""
    with warnings.catch_warnings():  # GP, QMC and TPE's options are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _sampler(search, number)


def _sampler(search: dict[str, Any], number: int) -> optuna.samplers.BaseSampler:
    kind, seed = search["sampler"], int(search.get("seed", 0))
    each = seed * 1_000_003 + number
    startup = startup_trials(search)
    if kind == "tpe":
        return optuna.samplers.TPESampler(
            seed=each, n_startup_trials=startup, constant_liar=True, multivariate=True
        )
    if kind == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=each, n_startup_trials=startup)
    if kind == "gp":
        return optuna.samplers.GPSampler(seed=each, n_startup_trials=startup)
    if kind == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, scramble=True)
    return optuna.samplers.RandomSampler(seed=each)


def startup_trials(search: dict[str, Any]) -> int:
    """Random trials before the model takes over: given, else a third of the budget."""
    given = search.get("n_startup_trials")
    return int(given) if given is not None else max(1, int(search["n_trials"]) // 3)


def study(
    session: Session, sweep: Sweep, members: Sequence[Experiment], number: int
) -> optuna.Study:
    """The study as the database has it: every asked trial, in order, with its state."""
    search = sweep.search or {}
    dists = distributions(search["space"])
    direction = "maximize" if search.get("mode", "max") == "max" else "minimize"
    out = optuna.create_study(direction=direction, sampler=sampler(search, number))
    by_arm: dict[str, list[Experiment]] = {}
    for m in members:
        by_arm.setdefault(m.sweep_arm or "", []).append(m)
    for asked in search.get("trials", []):
        ms = by_arm.get(label(asked["point"]), [])
        state, value, steps = outcome(session, search, ms)
        out.add_trial(
            create_trial(
                state=state,
                value=value,
                params={p: asked["point"][p] for p in dists},
                distributions=dists,
                system_attrs=asked.get("system_attrs") or {},
                intermediate_values=steps,
            )
        )
    return out


def outcome(
    session: Session, search: dict[str, Any], members: Sequence[Experiment]
) -> tuple[TrialState, float | None, dict[int, float]]:
    """A trial's state for the sampler, its value (the mean of the metric over its seeds) and,
    when pruned, its value at the rung it stopped at."""
    if not members or any(m.status in WAITING for m in members):
        return TrialState.RUNNING, None, {}
    metric = search.get("metric", "val/acc")
    done = [m for m in members if m.status == Status.succeeded.value]
    if done:
        values = metrics.last_values_at(session, [m.id for m in done], metric, None)
        if values:
            return TrialState.COMPLETE, sum(values.values()) / len(values), {}
    pruned = [m for m in members if m.status == Status.pruned.value]
    if pruned:
        step = max(m.progress_step for m in pruned)
        values = metrics.last_values_at(session, [m.id for m in pruned], metric, step)
        if values:
            return TrialState.PRUNED, None, {step: sum(values.values()) / len(values)}
        return TrialState.PRUNED, None, {}
    return TrialState.FAIL, None, {}


def in_flight(search: dict[str, Any], members: Sequence[Experiment]) -> int:
    """Asked trials with a member queued or running (one paused at a rung holds no worker:
    ASHA asks a new trial rather than wait for a promotion)."""
    waiting = {m.sweep_arm for m in members if m.status in RUNNING}
    return sum(label(t["point"]) in waiting for t in search.get("trials", []))


def per_pack(sweep: Sweep) -> int:
    """The trials one pack of the sweep holds (each brings one member per seed); 1 for a
    sweep that does not pack, or whose seeds alone fill a pack."""
    if not sweep.packing:
        return 1
    return max(1, int(sweep.packing["max_members"]) // max(1, len(sweep.seeds)))


def to_ask(search: dict[str, Any], members: Sequence[Experiment], pack: int = 1) -> int:
    """How many trials to ask now: up to `parallel` in flight, `n_trials` in all. With
    `pack` trials to a pack, none until there is room for a whole pack (or for all that are
    left): the trials of a pack end one after another, and asking as each ends would start
    every later trial alone."""
    if search.get("stopped"):
        return 0
    parallel = int(search.get("parallel") or 1)
    left = int(search["n_trials"]) - len(search.get("trials", []))
    free = parallel - in_flight(search, members)
    if free < min(pack, parallel, left):
        return 0
    return max(0, min(left, free))


def advance(session: Session, sweep: Sweep, members: list[Experiment]) -> list[str]:
    """Ask the sampler for the trials the sweep may start now and insert their members
    (queued), a pack's worth of trials to a pack when the sweep packs; the ids to send once
    committed. The caller holds the sweep's row lock.

    The trials of one batch are asked one after another, each from the study rebuilt with
    the ones before it running: the same history asks the same batch, packed or not."""
    search = dict(sweep.search or {})
    pack = per_pack(sweep)
    new: list[Experiment] = []
    for _ in range(to_ask(search, members, pack)):
        number = len(search.get("trials", []))
        s = study(session, sweep, members, number)
        trial = s.ask(distributions(search["space"]))
        params = {p: _readable(search["space"][p], v) for p, v in trial.params.items()}
        point: Point = {TRIAL: number, **{p: params[p] for p in search["space"]}}
        attrs = s._storage.get_trial(trial._trial_id).system_attrs
        asked = {"point": point, "system_attrs": attrs}
        # A new dict each time, the old one untouched: the JSON column sees the change.
        search = {**search, "trials": [*search.get("trials", []), asked]}
        sweep.search = search
        rows = _members(session, sweep, number, point)
        members += rows
        new += rows
    if sweep.packing:  # `pack` trials to a pack, each pack cut by what may train together
        size = pack * len(sweep.seeds)
        for start in range(0, len(new), size):
            chunk = new[start : start + size]
            packs.assign_packs(session, chunk, max_members=int(sweep.packing["max_members"]))
    return [r.id for r in new]


def _readable(dimension: dict[str, Any], value: Any) -> Any:
    """A continuous value to 4 significant digits (what a label and a paper print; finer
    than any activation or learning-rate study resolves), kept within the dimension."""
    if dimension["type"] != "float" or dimension.get("step") is not None:
        return value
    rounded = float(f"{value:.4g}")
    return min(max(rounded, float(dimension["low"])), float(dimension["high"]))


def member_spec(
    *,
    sweep_name: str,
    base_spec: dict[str, Any],
    fork: dict[str, Any] | None,
    number: int,
    point: Point,
    seed: int,
) -> tuple[ExperimentSpec, dict[str, Any] | None]:
    """The spec of trial `number`'s member at `seed`, and (a fork sweep's) its fork record.

    Without `fork`: the base spec at the point. With it (the sweep's, which names its parent
    experiment, step, noise clock and kept checkpoint): the parent's spec (`base_spec`)
    forked at that step with the point and seed as overrides, by the rules of any fork
    (core.spec.forks), so a trial changes only what a fork may. Raises ValueError (a
    ForkError names its path); the API calls it on the space's corners to refuse a sweep
    whose trials would not build."""
    params = {p: v for p, v in point.items() if p != TRIAL}
    name = experiment_name(sweep_name, number, point, seed)
    if fork is None:
        doc = point_spec(
            base_spec, sweep_name=sweep_name, tags=[], index=number, point=params, seed=seed
        )
        doc["name"] = name
        return ExperimentSpec.model_validate(doc), None
    overrides = {**params, "seed": seed}
    spec = forks.apply(base_spec, {**overrides, "name": name})
    forks.check_step(spec, int(fork["at_step"]))
    record = {
        "parent_id": fork["experiment_id"],
        "at_step": int(fork["at_step"]),
        "overrides": overrides,
        "noise_clock": fork.get("noise_clock", "continue"),
        "checkpoint": fork["checkpoint"],
    }
    return spec, record


def _members(session: Session, sweep: Sweep, number: int, point: Point) -> list[Experiment]:
    """One queued experiment per seed at the trial's point, bound for the first rung."""
    rows = []
    for seed in sweep.seeds:
        spec, fork = member_spec(
            sweep_name=sweep.name,
            base_spec=sweep.base_spec,
            fork=sweep.fork,
            number=number,
            point=point,
            seed=seed,
        )
        row = experiments_repo.create(
            session,
            spec=spec,
            owner_id=sweep.owner_id,
            sweep_id=sweep.id,
            memory_bytes=footprint(spec).total_bytes,
            fork=fork,
        )
        row.sweep_point, row.sweep_arm, row.sweep_seed = point, label(point), seed
        row.rung, row.rung_step = 0, first_pause(sweep.search or {}, row.spec)
        experiments_repo.mark_enqueued(session, row.id)
        rows.append(row)
    return rows


def corners(space: dict[str, dict[str, Any]]) -> list[Point]:
    """Points that reach every edge of the space (each path's low and high, or each choice,
    the others at their first): validated when the sweep is created, so that a trial the
    sampler asks later builds."""
    first = {
        p: (d["choices"][0] if d["type"] == "categorical" else _edge(d, "low"))
        for p, d in space.items()
    }
    out = [first]
    for path, d in space.items():
        edges = d["choices"][1:] if d["type"] == "categorical" else [_edge(d, "high")]
        out += [{**first, path: v} for v in edges]
    return out


def _edge(dimension: dict[str, Any], end: str) -> Any:
    """An end of a numeric dimension as a trial would hold it: an int dimension's as an int
    (its bounds arrive as JSON numbers, 5.0; a trial asks 5, and a fork's or a label's 5.0
    would read as another value)."""
    value = dimension[end]
    return int(value) if dimension["type"] == "int" else value


def sweeps_to_advance(session: Session) -> list[str]:
    """Optuna sweeps that have trials left to ask (for the reaper's pass)."""
    rows = session.execute(select(Sweep.id, Sweep.search).where(Sweep.search.is_not(None)))
    return [
        sweep_id
        for sweep_id, search in rows
        if search
        and search.get("kind") == "optuna"
        and not search.get("stopped")
        and len(search.get("trials", [])) < int(search["n_trials"])
    ]
