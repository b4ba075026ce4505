"""One experiment's metric series out of a million stored rows, through the HTTP API.

Run by hand: python benchmarks/bench_metrics_query.py [--experiments 200] [--names 20]
    [--steps 250] [--repeats 15] [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Issue 5: with 1,000,000 metric rows (default 200 experiments x 20 names x 250 steps) the
series of one experiment is read through the unique (experiment_id, name, step) index, so
its cost follows the experiment's points, not the table's. As the baseline, the same run
times a full scan of the table (`SELECT count(*) FROM metrics WHERE value > -1`) and prints
the query plan of the series query. Default: a temporary SQLite file; with --database-url
(Postgres) a scratch schema is created and dropped.
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

from fastapi.testclient import TestClient
from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.settings import Settings
from core.spec.experiment import CANONICAL_EXAMPLE
from core.store import metrics
from core.store.db import get_engine, session_scope
from core.store.models import Experiment, new_id
from service.app import create_app
from tests.scratch import drop_scratch, scratch_database

SERIES_SQL = (
    "SELECT experiment_id, name, step, epoch, value FROM metrics "
    "WHERE experiment_id = '{id}' ORDER BY experiment_id, name, step"
)
CHUNK = 50_000


def fill(url: str, experiments: int, names: int, steps: int) -> list[str]:
    """Insert the experiments and experiments x names x steps metric rows; return the ids."""
    ids = [new_id("exp") for _ in range(experiments)]
    metric_names = [f"layer{i // 4}/metric{i % 4}" for i in range(names - 2)]
    metric_names += ["val/acc", "train/loss"]
    engine = get_engine(url)
    with engine.begin() as conn:
        conn.execute(
            insert(Experiment),
            [
                {"id": i, "name": f"bench-{n}", "activation": "relu", "tags": []}
                | {"spec": CANONICAL_EXAMPLE, "status": "succeeded"}
                for n, i in enumerate(ids)
            ],
        )
    for e, exp_id in enumerate(ids):  # through the store's writer: seqs, counts, rollup
        with session_scope(url) as session:
            metrics.write_series(
                session,
                exp_id,
                {
                    name: [(s, s // 25, math.sin(0.01 * s + n + e)) for s in range(steps)]
                    for n, name in enumerate(metric_names)
                },
            )
    with engine.begin() as conn:  # fresh statistics, as a long-lived database has
        conn.execute(text("ANALYZE" if url.startswith("sqlite") else "ANALYZE metrics"))
    return ids


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm: connection pool, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiments", type=int, default=200)
    parser.add_argument("--names", type=int, default=20)
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--database-url", default=None, help="Postgres base URL (default SQLite)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="actlab-bench-"))
    url = ""
    try:
        url = scratch_database(args.database_url, tmp, prefix="bench")
        started = time.perf_counter()
        ids = fill(url, args.experiments, args.names, args.steps)
        total = args.experiments * args.names * args.steps
        print(
            f"{'postgres' if args.database_url else 'sqlite'}: {total:,} metric rows "
            f"({args.experiments} experiments x {args.names} names x {args.steps} steps) "
            f"inserted in {time.perf_counter() - started:.1f} s"
        )
        target = ids[len(ids) // 2]
        settings = Settings(
            data_dir=tmp,
            database_url=url,
            broker_url="redis://127.0.0.1:1/0",  # never used by these reads
            auth_enabled=False,
        )
        client = TestClient(create_app(settings))
        path = f"/v1/experiments/{target}/metrics"

        def get(params: dict[str, Any]) -> Callable[[], int]:
            def call() -> int:
                response = client.get(path, params=params)
                response.raise_for_status()
                return sum(len(points) for points in response.json()["series"].values())

            return call

        engine = get_engine(url)

        def sql(statement: str) -> Callable[[], Any]:
            def call() -> Any:
                with engine.connect() as conn:
                    return conn.execute(text(statement)).all()

            return call

        cases = [
            ("HTTP GET .../metrics (full series)", get({})),
            ("HTTP GET .../metrics?max_points=100", get({"max_points": 100})),
            ("HTTP GET .../metrics?name=val/acc", get({"name": "val/acc"})),
            ("SQL series query alone", sql(SERIES_SQL.format(id=target))),
            ("baseline: full scan count(*) WHERE value > -1", sql(FULL_SCAN)),
        ]
        print(f"\n{'query':<50} {'points':>8} {'median ms':>10}")
        timings = {}
        for label, fn in cases:
            result = fn()
            points = result if isinstance(result, int) else len(result)
            if label.startswith("baseline"):
                points = result[0][0]
            timings[label] = median_ms(fn, args.repeats)
            print(f"{label:<50} {points:>8} {timings[label]:>10.2f}")
        scan = timings[cases[-1][0]]
        print(
            f"\nfull series over HTTP: {scan / timings[cases[0][0]]:.1f}x faster than one "
            f"full scan; SQL series query: {scan / timings[cases[3][0]]:.0f}x faster "
            f"(median of {args.repeats})"
        )

        explain = "EXPLAIN QUERY PLAN " if url.startswith("sqlite") else "EXPLAIN "
        print("\nplan of the series query:")
        with engine.connect() as conn:
            for row in conn.execute(text(explain + SERIES_SQL.format(id=target))):
                print("  " + " | ".join(str(c) for c in row))
        return 0
    finally:
        if url:
            get_engine(url).dispose()
            drop_scratch(url)
        shutil.rmtree(tmp, ignore_errors=True)


FULL_SCAN = "SELECT count(*) FROM metrics WHERE value > -1"

if __name__ == "__main__":
    sys.exit(main())
