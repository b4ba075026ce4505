"""Metric points: idempotent inserts and series queries."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.store import live
from service.store.models import Metric

Row = tuple[int, int, float]  # step, epoch, value


def insert_points(
    session: Session, experiment_id: str, *, step: int, epoch: int, values: Mapping[str, float]
) -> None:
    """Insert one point per name; a point already stored at (name, step) is left as it is.

    A resumed or duplicated attempt re-reports steps it already reported: the unique key
    makes that a no-op instead of an error or a second row.
    """
    # JSON cannot carry NaN or infinity; a non-finite value is a failure, reported as status.
    rows = [
        {
            "experiment_id": experiment_id,
            "name": name,
            "step": step,
            "epoch": epoch,
            "value": float(value),
        }
        for name, value in values.items()
        if math.isfinite(value)
    ]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(Metric)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["experiment_id", "name", "step"])
        .returning(Metric.id, Metric.name, Metric.step, Metric.epoch, Metric.value)
    )
    # Only the rows inserted come back: a re-reported point is neither stored nor sent twice.
    inserted = sorted([list(row) for row in session.execute(stmt)])
    if inserted:
        live.note_points(session, experiment_id, inserted)


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

    Ordered by the unique (experiment_id, name, step) index, so it is read in index order.
    """
    ids = list(experiment_ids)
    query = select(Metric.experiment_id, Metric.name, Metric.step, Metric.epoch, Metric.value)
    query = query.where(
        Metric.experiment_id.in_(ids) if len(ids) > 1 else Metric.experiment_id == ids[0]
    )
    wanted = list(names or [])
    if wanted:
        query = query.where(Metric.name.in_(wanted))
    if after_step is not None:
        query = query.where(Metric.step > after_step)
    query = query.order_by(Metric.experiment_id, Metric.name, Metric.step)
    out: dict[str, dict[str, list[Row]]] = {i: defaultdict(list) for i in ids}
    for experiment_id, name, step, epoch, value in session.execute(query).tuples():
        out[experiment_id][name].append((step, epoch, value))
    return {i: dict(points) for i, points in out.items()}


def points_after_id(
    session: Session, experiment_id: str, after_id: int, limit: int = 1000
) -> list[tuple[int, str, int, int, float]]:
    """New points in insertion order: (row id, name, step, epoch, value)."""
    query = (
        select(Metric.id, Metric.name, Metric.step, Metric.epoch, Metric.value)
        .where(Metric.experiment_id == experiment_id, Metric.id > after_id)
        .order_by(Metric.id)
        .limit(limit)
    )
    return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def last_id(session: Session, experiment_id: str) -> int:
    query = select(func.max(Metric.id)).where(Metric.experiment_id == experiment_id)
    return int(session.execute(query).scalar_one() or 0)


def names(session: Session, experiment_ids: Iterable[str]) -> list[str]:
    """The distinct metric names the experiments have reported, sorted."""
    ids = list(experiment_ids)
    if not ids:
        return []
    query = select(Metric.name).where(Metric.experiment_id.in_(ids)).distinct()
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
