"""Metric points: idempotent inserts and series queries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from core.store import metric_writes, publish, series_read
from core.store.metric_writes import Row
from core.store.models import Metric, MetricSeries


def insert_points(
    session: Session, experiment_id: str, *, step: int, epoch: int, values: Mapping[str, float]
) -> None:
    """Insert one point per name; a point already stored at (name, step) is left as it is.

    A resumed or duplicated attempt re-reports steps it already reported: the unique key
    makes that a no-op instead of an error or a second row.
    """
    write_series(
        session, experiment_id, {name: [(step, epoch, value)] for name, value in values.items()}
    )


def write_series(session: Session, experiment_id: str, points: Mapping[str, Iterable[Row]]) -> None:
    """Insert many (step, epoch, value) points by name (a bulk load), as insert_points."""
    # Only the rows inserted come back: a re-reported point is neither stored nor sent twice.
    inserted = metric_writes.write_points(session, experiment_id, points)
    if inserted:
        publish.note_points(session, experiment_id, inserted)


def series(
    session: Session,
    experiment_id: str,
    *,
    names: Iterable[str] | None = None,
    after_step: int | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """All points of an experiment, grouped by name, ordered by step."""
    return series_many(session, [experiment_id], names=names, after_step=after_step).get(
        experiment_id, {}
    )


def series_many(
    session: Session,
    experiment_ids: Iterable[str],
    *,
    names: Iterable[str] | None = None,
    after_step: int | None = None,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Points of several experiments in one query: {experiment: {name: [points by step]}}."""
    rows = series_rows(session, experiment_ids, names=names, after_step=after_step)
    return {
        e: {
            name: [{"step": s, "epoch": ep, "value": v} for s, ep, v in points]
            for name, points in by_name.items()
        }
        for e, by_name in rows.items()
    }


def series_rows(
    session: Session,
    experiment_ids: Iterable[str],
    *,
    names: Iterable[str] | None = None,
    after_step: int | None = None,
) -> dict[str, dict[str, list[Row]]]:
    """{experiment: {name: [(step, epoch, value) by step]}}, as plain tuples (no dicts).

    One query per series (listed from metric_series), each a range of the unique
    (experiment_id, name, step) index, run on the driver's cursor: SQLAlchemy's row
    objects cost more than the read on long series.
    """
    ids = list(experiment_ids)
    out: dict[str, dict[str, list[Row]]] = {i: {} for i in ids}
    pairs = sorted(series_read.counts(session, ids, names))
    if not pairs:
        return out
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle in ("qmark", "numeric") else "%s"
    sql = f"SELECT step, epoch, value FROM metrics WHERE experiment_id = {mark} AND name = {mark}"
    extra: tuple[int, ...] = ()
    if after_step is not None:
        sql, extra = sql + f" AND step > {mark}", (after_step,)
    cursor = connection.connection.cursor()
    try:
        for experiment_id, name in pairs:
            cursor.execute(sql + " ORDER BY step", (experiment_id, name, *extra))
            rows = cast(list[Row], cursor.fetchall())
            if rows:
                out[experiment_id][name] = rows
    finally:
        cursor.close()
    return out


def names(session: Session, experiment_ids: Iterable[str]) -> list[str]:
    """The distinct metric names the experiments have reported, sorted."""
    ids = list(experiment_ids)
    if not ids:
        return []
    query = select(MetricSeries.name).where(MetricSeries.experiment_id.in_(ids)).distinct()
    return sorted(session.scalars(query))


def points_after_ids(
    session: Session, after: dict[int, tuple[str, ...]], limit: int = 1000
) -> list[list[Any]]:
    """New points, each experiment after its own id (`{id: experiments}`), in id order:
    [id, experiment, name, step, epoch, value]."""
    if not after:
        return []
    query = (
        select(
            Metric.id, Metric.experiment_id, Metric.name, Metric.step, Metric.epoch, Metric.value
        )
        .where(or_(*(and_(Metric.experiment_id.in_(i), Metric.id > a) for a, i in after.items())))
        .order_by(Metric.id)
        .limit(limit)
    )
    return [list(row) for row in session.execute(query)]


def compose_lineage(
    chain: list[tuple[str, int | None]], found: dict[str, dict[str, list[Row]]]
) -> dict[str, list[Row]]:
    """One experiment's series from its lineage's rows: each ancestor's points up to the
    step its line forked at (the smallest fork step after it), then the experiment's own."""
    bounds: list[int | None] = []
    cap: int | None = None
    for _, at_step in reversed(chain):
        if at_step is not None:
            cap = at_step if cap is None else min(cap, at_step)
        bounds.insert(0, cap)
    out: dict[str, list[Row]] = {}
    low = -1
    for (experiment_id, _), high in zip(chain, bounds, strict=True):
        for name, rows in found.get(experiment_id, {}).items():
            taken = [r for r in rows if r[0] > low and (high is None or r[0] <= high)]
            if taken:
                out.setdefault(name, []).extend(taken)
        if high is not None:
            low = max(low, high)
    return dict(sorted(out.items()))


def last_values_at(
    session: Session, ids: list[str], metric: str, step: int | None
) -> dict[str, float]:
    """Each experiment's last value of `metric` at or before `step` (all of it for None):
    what a rung ranks, and what an Optuna trial scored."""
    if not ids:
        return {}
    last = (
        select(Metric.experiment_id, func.max(Metric.step).label("step"))
        .where(Metric.experiment_id.in_(ids), Metric.name == metric)
        .group_by(Metric.experiment_id)
    )
    if step is not None:
        last = last.where(Metric.step <= step)
    sub = last.subquery()
    rows = session.execute(
        select(Metric.experiment_id, Metric.value).join(
            sub,
            (Metric.experiment_id == sub.c.experiment_id)
            & (Metric.step == sub.c.step)
            & (Metric.name == metric),
        )
    )
    return {experiment_id: float(value) for experiment_id, value in rows}
