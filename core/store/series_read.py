"""Downsampled series read from the rollup: the work grows with the points asked for.

service/experiments/downsample.py defines the result; rollup.Plan picks the same seqs from
O(max_points * log(n / max_points)) stored blocks and raw points, and only the kept points'
rows are read. Short series are cheaper read whole and downsampled in Python (the
service layer chooses, by the series' stored count).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.store import rollup
from core.store.metric_writes import CHUNK, Row, blocks
from core.store.models import Metric, MetricSeries


def counts(
    session: Session, experiment_ids: list[str], names: Iterable[str] | None
) -> dict[tuple[str, str], int]:
    """{(experiment, name): points stored} of every series there is (none: no points)."""
    query = select(MetricSeries.experiment_id, MetricSeries.name, MetricSeries.count).where(
        MetricSeries.experiment_id.in_(experiment_ids)
    )
    wanted = list(names or [])
    if wanted:
        query = query.where(MetricSeries.name.in_(wanted))
    return {(e, n): c for e, n, c in session.execute(query)}


def first_seq_after(session: Session, experiment_id: str, name: str, after_step: int) -> int | None:
    """The seq of the first point after `after_step` (None: there is none)."""
    query = (
        select(Metric.seq)
        .where(Metric.experiment_id == experiment_id, Metric.name == name, Metric.step > after_step)
        .order_by(Metric.step)
        .limit(1)
    )
    return session.execute(query).scalar()


def sampled(
    session: Session, experiment_id: str, name: str, *, lo: int, n: int, max_points: int
) -> list[Row]:
    """downsample(points with seqs [lo, lo + n), max_points), read from the rollup."""
    plan = rollup.Plan(lo, n, max_points)
    seqs = plan.direct()
    if seqs is None:
        nodes, raw = plan.needs()
        stored = {
            node: ext for (_, node), ext in blocks(session, experiment_id, [name], nodes).items()
        }
        seqs = plan.select(stored, dict(_at(session, experiment_id, name, raw, values=True)))
    return [
        (step, epoch, value)
        for _, step, epoch, value in _at(session, experiment_id, name, seqs, values=False)
    ]


def _at(
    session: Session, experiment_id: str, name: str, seqs: list[int], *, values: bool
) -> list[tuple]:  # type: ignore[type-arg]
    """(seq, value) or (seq, step, epoch, value) of the points at `seqs`, by seq."""
    cols = (
        (Metric.seq, Metric.value)
        if values
        else (Metric.seq, Metric.step, Metric.epoch, Metric.value)
    )
    out: list[tuple] = []  # type: ignore[type-arg]
    unique = sorted(set(seqs))
    for start in range(0, len(unique), CHUNK * 4):
        part = unique[start : start + CHUNK * 4]
        query = select(*cols).where(Metric.experiment_id == experiment_id, Metric.name == name)
        if part[-1] - part[0] + 1 == len(part):  # a run: one index range
            query = query.where(Metric.seq >= part[0], Metric.seq <= part[-1])
        else:
            query = query.where(Metric.seq.in_(part))
        out += session.execute(query.order_by(Metric.seq)).tuples().all()
    return out
