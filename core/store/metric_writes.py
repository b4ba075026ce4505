"""Writing metric points, with their seqs, series counts and rollup kept exact.

A point stored at (name, step) already is left as it is: a resumed or duplicated attempt
re-reports steps it reported, and the unique key makes that a no-op. Points after the
series' last step (every write of a training run) are appended: seqs count on, and the
rollup blocks they complete are written (core/store/rollup.py). A point *before* the
last step that was not stored yet would shift every later seq: that series is renumbered
and its rollup rebuilt, O(its length), which no training run does.

Writers of one experiment are serialized: on Postgres by a row lock on the experiment
(the worker's fenced lease renewal in the same transaction takes it anyway), on SQLite by
BEGIN IMMEDIATE (core/store/db.py).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.store import rollup
from core.store.models import Experiment, Metric, MetricRollup, MetricSeries

Row = tuple[int, int, float]  # step, epoch, value
CHUNK = 2000  # rows per INSERT: under SQLite's 32766 bound parameters
OUT_OF_ORDER = 2**31 - 1  # temporary seqs count down from here until the renumbering
METRICS = cast(Table, Metric.__table__)
ROLLUPS = cast(Table, MetricRollup.__table__)


def write_points(
    session: Session, experiment_id: str, points: Mapping[str, Iterable[Row]]
) -> list[list[Any]]:
    """Store (step, epoch, value) points by name; return those inserted, as
    [id, name, step, epoch, value] in id order. Non-finite values are dropped."""
    clean = {name: _clean(rows) for name, rows in points.items()}
    clean = {name: rows for name, rows in clean.items() if rows}
    if not clean:
        return []
    _lock(session, experiment_id)
    state = _state(session, experiment_id, list(clean))
    rows: list[dict[str, Any]] = []
    for name, pts in clean.items():
        count, last = state.get(name, (0, None))
        late = 0
        for step, epoch, value in pts:
            if last is None or step > last:
                seq = count
                count += 1
            else:
                seq, late = OUT_OF_ORDER - late, late + 1
            rows.append(_row(experiment_id, name, step, seq, epoch, value))
    inserted = _insert(session, rows)
    _maintain(session, experiment_id, state, inserted)
    return sorted([i, name, step, epoch, value] for i, name, step, _, epoch, value in inserted)


def _clean(rows: Iterable[Row]) -> list[Row]:
    """Finite points by step, the first of any repeated step (as DO NOTHING keeps it)."""
    by_step: dict[int, Row] = {}
    for step, epoch, value in rows:
        # JSON cannot carry NaN or infinity; a non-finite value is a failure, as status.
        if math.isfinite(value) and step not in by_step:
            by_step[int(step)] = (int(step), int(epoch), float(value))
    return [by_step[s] for s in sorted(by_step)]


def _row(
    experiment_id: str, name: str, step: int, seq: int, epoch: int, value: float
) -> dict[str, Any]:
    return {"experiment_id": experiment_id, "name": name, "step": step, "seq": seq} | {
        "epoch": epoch,
        "value": value,
    }


def _lock(session: Session, experiment_id: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        query = select(Experiment.id).where(Experiment.id == experiment_id).with_for_update()
        session.execute(query)


def _state(session: Session, experiment_id: str, names: list[str]) -> dict[str, tuple[int, int]]:
    query = select(MetricSeries.name, MetricSeries.count, MetricSeries.last_step).where(
        MetricSeries.experiment_id == experiment_id, MetricSeries.name.in_(names)
    )
    return {name: (count, last) for name, count, last in session.execute(query)}


def _insert_stmt(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _insert(session: Session, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Insert, skipping points already stored; the rows inserted come back.

    One cached statement run as executemany (SQLAlchemy batches it into multi-row
    INSERT ... RETURNING), through Core: compiling a VALUES list per call cost more than
    the inserts on bulk loads.
    """
    table = METRICS
    cols = (table.c.id, table.c.name, table.c.step, table.c.seq, table.c.epoch, table.c.value)
    stmt = (
        _insert_stmt(session)(table)
        .on_conflict_do_nothing(index_elements=["experiment_id", "name", "step"])
        .returning(*cols)
    )
    return [tuple(r) for r in session.connection().execute(stmt, rows)]


def _maintain(
    session: Session,
    experiment_id: str,
    state: Mapping[str, tuple[int, int]],
    inserted: list[tuple[Any, ...]],
) -> None:
    """Extend (or rebuild) each written series' rollup and save its count and last step."""
    by_name: dict[str, list[tuple[int, int, float]]] = defaultdict(list)
    for _, name, step, seq, _, value in inserted:
        by_name[name].append((seq, step, value))
    saved: list[dict[str, Any]] = []
    appends: dict[tuple[int, int], dict[str, list[float]]] = defaultdict(dict)
    for name, got in by_name.items():
        count, last = state.get(name, (0, None))
        got.sort()
        if [g[0] for g in got] == list(range(count, count + len(got))):  # appended only
            appends[count, len(got)][name] = [v for _, _, v in got]
            count, last = count + len(got), got[-1][1]
        else:
            count, last = rebuild(session, experiment_id, name)
        saved.append({"experiment_id": experiment_id, "name": name} | {"count": count})
        saved[-1]["last_step"] = last
    for (start, _), values in appends.items():  # names written at the same seqs: together
        _extend(session, experiment_id, start, values)
    if not saved:  # every point was stored already
        return
    stmt = _insert_stmt(session)(MetricSeries).values(saved)
    stmt = stmt.on_conflict_do_update(
        index_elements=["experiment_id", "name"],
        set_={"count": stmt.excluded.count, "last_step": stmt.excluded.last_step},
    )
    session.execute(stmt)


def _extend(
    session: Session, experiment_id: str, start: int, values: Mapping[str, list[float]]
) -> None:
    """Write the rollup blocks that appending `values` (by name, all at seq `start` on)
    completes; what they need of the points and blocks before `start` is read at once."""
    end = start + len(next(iter(values.values())))
    raw, nodes = rollup.old_nodes(start, end)
    if start >> rollup.MIN_LEVEL == end >> rollup.MIN_LEVEL:
        return  # no block completes
    names = list(values)
    old_values: dict[tuple[str, int], float] = {}
    if raw:
        query = select(Metric.name, Metric.seq, Metric.value).where(
            Metric.experiment_id == experiment_id,
            Metric.name.in_(names),
            Metric.seq >= raw.start,
            Metric.seq < raw.stop,
        )
        old_values = {(n, q): v for n, q, v in session.execute(query)}
    old = blocks(session, experiment_id, names, nodes) if nodes else {}
    new: list[dict[str, Any]] = []
    for name, vals in values.items():

        def value_at(seq: int, name: str = name, vals: list[float] = vals) -> float:
            return vals[seq - start] if seq >= start else old_values[name, seq]

        def old_block(node: int, name: str = name) -> rollup.Extremes:
            return old[name, node]

        new += _block_rows(experiment_id, name, rollup.new_blocks(start, end, value_at, old_block))
    _save_blocks(session, new)


def blocks(
    session: Session, experiment_id: str, names: list[str], nodes: list[int]
) -> dict[tuple[str, int], rollup.Extremes]:
    """Stored rollup blocks of these series, by (name, node)."""
    cols: tuple[Any, ...] = (MetricRollup.name, MetricRollup.node, MetricRollup.min_seq)
    cols += (MetricRollup.min_value, MetricRollup.max_seq, MetricRollup.max_value)
    out: dict[tuple[str, int], rollup.Extremes] = {}
    for start in range(0, len(nodes), CHUNK * 4):
        query = select(*cols).where(
            MetricRollup.experiment_id == experiment_id,
            MetricRollup.name.in_(names),
            MetricRollup.node.in_(nodes[start : start + CHUNK * 4]),
        )
        out.update(((n, node), (a, b, c, d)) for n, node, a, b, c, d in session.execute(query))
    return out


def _block_rows(
    experiment_id: str, name: str, new: list[tuple[int, rollup.Extremes]]
) -> list[dict[str, Any]]:
    return [
        {"experiment_id": experiment_id, "name": name, "node": n, "min_seq": e[0]}
        | {"min_value": e[1], "max_seq": e[2], "max_value": e[3]}
        for n, e in new
    ]


def _save_blocks(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.connection().execute(ROLLUPS.insert(), rows)


def rebuild(session: Session, experiment_id: str, name: str) -> tuple[int, int]:
    """Renumber a series' seqs by step and rebuild its rollup: (count, last step)."""
    where = (Metric.experiment_id == experiment_id, Metric.name == name)
    query = select(Metric.id, Metric.value).where(*where).order_by(Metric.step)
    ids_values = session.execute(query).tuples().all()
    last = session.execute(select(Metric.step).where(*where).order_by(Metric.step.desc()))
    last_step = int(last.scalars().first() or 0)
    table = METRICS
    # Negate first, so no new seq ever meets an old one under the unique key.
    session.execute(update(table).where(*where).values(seq=-1 - table.c.seq))
    renumber = update(table).where(table.c.id == bindparam("row_id"))
    params = [{"row_id": i, "new_seq": seq} for seq, (i, _) in enumerate(ids_values)]
    for start in range(0, len(params), CHUNK):
        session.execute(renumber.values(seq=bindparam("new_seq")), params[start : start + CHUNK])
    session.execute(
        delete(MetricRollup).where(
            MetricRollup.experiment_id == experiment_id, MetricRollup.name == name
        )
    )
    values = [v for _, v in ids_values]

    def nothing_older(n: int) -> rollup.Extremes:
        raise KeyError(n)

    built = rollup.new_blocks(0, len(values), values.__getitem__, nothing_older)
    _save_blocks(session, _block_rows(experiment_id, name, built))
    return len(values), last_step
