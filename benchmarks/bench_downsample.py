"""Downsampled reads against series length at a fixed max_points: the rollup against a
whole read downsampled in Python, on the same rows.

Run by hand: python benchmarks/bench_downsample.py [--lengths 10000 100000 1000000]
    [--max-points 1000] [--repeats 5] [--database-url postgresql+psycopg://...]

One experiment per length, its series written through the store's writer (seqs, counts,
rollup, as the worker writes them). Each read is the service call the endpoint makes,
in process (no HTTP): `max_points` answered from the rollup, and the same `max_points`
by reading the whole series and calling downsample(), which returns the same points
(checked). Medians of --repeats, wall and process CPU time (SQLite runs in process; on
Postgres the server's CPU is not counted).
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.spec.experiment import CANONICAL_EXAMPLE
from core.store import metrics
from core.store.db import get_engine, session_scope
from core.store.models import Experiment, new_id
from service.auth import ANONYMOUS
from service.experiments import service
from service.experiments.downsample import downsample
from tests.scratch import drop_scratch, scratch_database

NAME = "train/loss"


def fill(url: str, n: int) -> str:
    exp_id = new_id("exp")
    with get_engine(url).begin() as conn:
        row = {"id": exp_id, "name": f"n={n}", "activation": "relu", "tags": []}
        conn.execute(insert(Experiment), [row | {"spec": CANONICAL_EXAMPLE, "status": "running"}])
    for start in range(0, n, 100_000):
        points = [
            (s, s // 1000, math.sin(s / 500) + 0.3 * math.sin(s * 1.7))
            for s in range(start, min(n, start + 100_000))
        ]
        with session_scope(url) as session:
            metrics.write_series(session, exp_id, {NAME: points})
    return exp_id


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """Median wall and CPU milliseconds of fn() after a warm-up, and its last result."""
    out = fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000, out


def rollup_read(url: str, exp_id: str, k: int) -> Callable[[], Any]:
    def call() -> Any:
        with session_scope(url) as session:
            return service.metric_series(
                session=session,
                principal=ANONYMOUS,
                experiment_id=exp_id,
                names=[NAME],
                after_step=None,
                max_points=k,
            )[NAME]

    return call


def whole_read(url: str, exp_id: str, k: int) -> Callable[[], Any]:
    def call() -> Any:
        with session_scope(url) as session:
            rows = metrics.series_rows(session, [exp_id], names=[NAME])[exp_id][NAME]
        return downsample(rows, k)

    return call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--max-points", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="Postgres; default a SQLite file")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="actlab-bench-ds-"))
    url = scratch_database(args.database_url, tmp, prefix="bench")
    try:
        k = args.max_points
        print(f"max_points={k}, median of {args.repeats}, ms ({url.split(':')[0]})\n")
        print(f"{'points':>10} {'rollup wall':>12} {'cpu':>8} {'whole+python wall':>18} {'cpu':>8}")
        for n in args.lengths:
            exp_id = fill(url, n)
            r_wall, r_cpu, fast = timed(rollup_read(url, exp_id, k), args.repeats)
            w_wall, w_cpu, slow = timed(whole_read(url, exp_id, k), args.repeats)
            assert fast == slow, f"n={n}: the rollup's points differ from downsample()'s"
            print(f"{n:>10,} {r_wall:>12.1f} {r_cpu:>8.1f} {w_wall:>18.1f} {w_cpu:>8.1f}")
        return 0
    finally:
        drop_scratch(url)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
