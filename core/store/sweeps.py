"""Sweep rows and the queries that aggregate their experiments."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.store import pages
from core.store.models import Experiment, Metric, MetricSeries, Sweep, new_id


def create(
    session: Session,
    *,
    name: str,
    base_spec: dict[str, Any],
    grid: dict[str, list[Any]],
    seeds: list[int],
    metric: str,
    baseline: dict[str, Any] | None,
    owner_id: str | None = None,
) -> Sweep:
    """Insert a sweep row (its experiments are created by the caller); the caller commits."""
    sweep = Sweep(
        id=new_id("swp"),
        name=name,
        owner_id=owner_id,
        base_spec=base_spec,
        grid=grid,
        seeds=seeds,
        metric=metric,
        baseline=baseline,
    )
    session.add(sweep)
    session.flush()
    return sweep


def get(session: Session, sweep_id: str) -> Sweep | None:
    return session.get(Sweep, sweep_id)


def list_page(
    session: Session, *, limit: int, cursor: str | None = None, owner_id: str | None = None
) -> tuple[list[Sweep], str | None]:
    """One page, newest first, and the cursor of the next (see `pages.newest_first`)."""
    query = select(Sweep)
    if owner_id:
        query = query.where(Sweep.owner_id == owner_id)
    return pages.newest_first(session, query, limit=limit, cursor=cursor)


def experiments_of(session: Session, sweep_id: str) -> Sequence[Experiment]:
    """Every experiment of a sweep, oldest first."""
    query = select(Experiment).where(Experiment.sweep_id == sweep_id).order_by(Experiment.id)
    return session.scalars(query).all()


def status_counts(session: Session, sweep_ids: Iterable[str]) -> dict[str, dict[str, int]]:
    """sweep id -> {status: number of experiments}, in one grouped query."""
    ids = list(sweep_ids)
    out: dict[str, dict[str, int]] = {i: {} for i in ids}
    if not ids:
        return out
    query = (
        select(Experiment.sweep_id, Experiment.status, func.count())
        .where(Experiment.sweep_id.in_(ids))
        .group_by(Experiment.sweep_id, Experiment.status)
    )
    for sweep_id, status, count in session.execute(query):
        out[str(sweep_id)][status] = int(count)
    return out


def last_values(session: Session, experiment_ids: Iterable[str], metric: str) -> dict[str, float]:
    """experiment id -> the value of `metric` at its highest step, for those that have one."""
    ids = list(experiment_ids)
    if not ids:
        return {}
    # metric_series knows each series' last step: one index seek per experiment, where a
    # max(step) per experiment read every point of the metric.
    query = (
        select(Metric.experiment_id, Metric.value)
        .join(
            MetricSeries,
            (Metric.experiment_id == MetricSeries.experiment_id)
            & (Metric.name == MetricSeries.name)
            & (Metric.step == MetricSeries.last_step),
        )
        .where(MetricSeries.experiment_id.in_(ids), MetricSeries.name == metric)
    )
    return {experiment_id: float(value) for experiment_id, value in session.execute(query)}
