"""Series downsampled inside the database: each bucket's first, min, max and last points.

One statement for every requested experiment and name. The database ranks each series'
rows and aggregates them into `k // 4` equal-count buckets, keeping every bucket's first,
last, lowest and highest point (ties: the earliest step); as fill it also returns the first
point of each of `k` finer buckets. Only those candidates (at most ~2k a series) cross into
Python, which keeps every extreme and adds evenly spaced fill points until the series has
exactly min(k, its length) points. Window functions: SQLite >= 3.25 and Postgres alike.

The database still reads every row of the series once (in index order, in C); what no
longer grows with the series is what is sent, parsed and built in Python.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

Row = tuple[int, int, float]  # step, epoch, value

# {where} filters the metrics table; :buckets = k // 4 (at least 1), :fine = k.
_SQL = """
WITH ranked AS (
  SELECT experiment_id AS e, name AS nm, step, value,
    ROW_NUMBER() OVER (PARTITION BY experiment_id, name ORDER BY step) - 1 AS rn,
    COUNT(*) OVER (PARTITION BY experiment_id, name) AS n
  FROM metrics WHERE {where}
),
src AS (
  SELECT e, nm, step, value, rn * :buckets / n AS bk, rn * :fine / n AS fine FROM ranked
),
agg AS (
  SELECT e, nm, bk, MIN(step) AS first, MAX(step) AS last, MIN(value) AS lo, MAX(value) AS hi
  FROM src GROUP BY e, nm, bk
),
keep AS (
  SELECT e, nm, first AS step, 1 AS extreme FROM agg
  UNION ALL SELECT e, nm, last, 1 FROM agg
  UNION ALL SELECT s.e, s.nm, MIN(s.step), 1 FROM src s
    JOIN agg a ON s.e = a.e AND s.nm = a.nm AND s.bk = a.bk AND s.value = a.lo
    GROUP BY s.e, s.nm, s.bk
  UNION ALL SELECT s.e, s.nm, MIN(s.step), 1 FROM src s
    JOIN agg a ON s.e = a.e AND s.nm = a.nm AND s.bk = a.bk AND s.value = a.hi
    GROUP BY s.e, s.nm, s.bk
  UNION ALL SELECT e, nm, MIN(step), 0 FROM src GROUP BY e, nm, fine
),
picked AS (SELECT e, nm, step, MAX(extreme) AS extreme FROM keep GROUP BY e, nm, step)
SELECT m.experiment_id, m.name, m.step, m.epoch, m.value, p.extreme
FROM picked p JOIN metrics m
  ON m.experiment_id = p.e AND m.name = p.nm AND m.step = p.step
ORDER BY m.experiment_id, m.name, m.step
"""


def downsampled(
    session: Session,
    experiment_ids: Sequence[str],
    *,
    names: Sequence[str] | None,
    after_step: int | None,
    max_points: int,
) -> dict[str, dict[str, list[Row]]]:
    """{experiment: {name: [(step, epoch, value)]}}, min(max_points, length) points each."""
    where = ["experiment_id IN :ids"]
    params: dict[str, Any] = {"ids": list(experiment_ids), "fine": max_points}
    params["buckets"] = max(max_points // 4, 1)
    if names:
        where.append("name IN :names")
        params["names"] = list(names)
    if after_step is not None:
        where.append("step > :after")
        params["after"] = after_step
    statement = text(_SQL.format(where=" AND ".join(where)))
    statement = statement.bindparams(bindparam("ids", expanding=True))
    if names:
        statement = statement.bindparams(bindparam("names", expanding=True))
    candidates: dict[str, dict[str, list[tuple[Row, bool]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for e, name, step, epoch, value, extreme in session.execute(statement, params):
        candidates[e][name].append(((step, epoch, value), bool(extreme)))
    return {
        e: {name: _choose(rows, max_points) for name, rows in by_name.items()}
        for e, by_name in candidates.items()
    }


def _choose(rows: list[tuple[Row, bool]], k: int) -> list[Row]:
    """Every extreme (if k >= 4), then evenly spaced fill points, up to k, by step."""
    if len(rows) <= k:
        return [row for row, _ in rows]
    extremes = [row for row, is_extreme in rows if is_extreme] if k >= 4 else []
    fill = [row for row, is_extreme in rows if not is_extreme or k < 4]
    if k < 4:  # no whole bucket: the ends, then evenly spaced points between them
        extremes, fill = [fill[0], fill[-1]][:k], fill[1:-1]
    need = k - len(extremes)
    chosen = [fill[(i * len(fill)) // need] for i in range(need)] if need > 0 else []
    return sorted(extremes + chosen)
