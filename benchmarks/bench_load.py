"""Concurrent POST /v1/experiments against a real API process: latency and throughput.

Run by hand: python benchmarks/bench_load.py [--requests 1000] [--concurrency 50]
    [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--broker-url URL]

Workload (issue 6): half the requests are plain (distinct seeds); the other half are
Idempotency-Key retries, each key sent twice at once with the same body. The API runs as a
child process (`python -m actlab api`) with no worker, so every experiment stays queued.
Default: a temporary SQLite file and an embedded Redis; with --database-url (Postgres) a
scratch schema is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.spec.experiment import CANONICAL_EXAMPLE  # noqa: E402
from core.store.db import session_scope  # noqa: E402
from core.store.models import Experiment  # noqa: E402
from service.embedded import EmbeddedRedis  # noqa: E402
from tests.scratch import drop_scratch, scratch_database  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spec(seed: int, name: str) -> dict[str, Any]:
    return {**CANONICAL_EXAMPLE, "seed": seed, "name": name}


def workload(n: int) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
    """n requests: n/2 plain, n/4 keys each sent twice (pairs adjacent, units shuffled)."""
    plain, keys = n - 2 * (n // 4), n // 4
    units = [[(f"plain-{i}", {}, spec(i, f"bench-{i}"))] for i in range(plain)]
    for k in range(keys):
        body, headers = spec(1_000_000 + k, f"bench-key-{k}"), {"Idempotency-Key": f"k{k}"}
        units.append([(f"key-{k}", headers, body), (f"key-{k}", headers, body)])
    random.Random(0).shuffle(units)
    return [req for unit in units for req in unit]


async def fire(
    base_url: str,
    requests: list[tuple[str, dict[str, str], dict[str, Any]]],
    concurrency: int,
    deadline: float,
) -> tuple[list[tuple[str, int, str, float]], float]:
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    results: list[tuple[str, int, str, float]] = []  # tag, status (0: transport error), id, s
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as api:

        async def post(tag: str, headers: dict[str, str], body: dict[str, Any]) -> None:
            async with semaphore:
                start = time.perf_counter()
                try:
                    r = await api.post("/v1/experiments", json=body, headers=headers)
                    status, exp_id = r.status_code, (r.json().get("id") or "")
                except (httpx.TransportError, ValueError):
                    status, exp_id = 0, ""
                results.append((tag, status, exp_id, time.perf_counter() - start))

        started = time.perf_counter()
        # A stalled server is reported (unanswered requests), not waited on forever.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(post(*req) for req in requests)), deadline)
        return results, time.perf_counter() - started


def pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--database-url", default=None, help="Postgres base URL (default SQLite)")
    parser.add_argument("--deadline", type=float, default=120.0, help="give up after (s)")
    parser.add_argument("--broker-url", default=None, help="Redis URL (default: embedded)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="actlab-bench-", dir="/tmp"))  # short: Unix socket
    redis_server = None
    url = ""
    api = None
    try:
        url = scratch_database(args.database_url, tmp, prefix="bench")
        broker = args.broker_url
        if not broker:
            redis_server = EmbeddedRedis(tmp / "redis").start()
            broker = f"redis+socket://{redis_server.socket}"
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ACTLAB_")}
        env.update(
            ACTLAB_DATA_DIR=str(tmp),
            ACTLAB_DATABASE_URL=url,
            ACTLAB_BROKER_URL=broker,
            ACTLAB_QUEUE=f"bench-{uuid.uuid4().hex[:8]}",
            ACTLAB_AUTH_ENABLED="false",
            ACTLAB_MAX_QUEUED_PER_OWNER=str(max(10 * args.requests, 1000)),
            ACTLAB_LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
        )
        log = (tmp / "api.log").open("wb")
        api = subprocess.Popen(
            [sys.executable, "-m", "actlab", "api", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while "Uvicorn running" not in (tmp / "api.log").read_text(errors="replace"):
            if api.poll() is not None or time.monotonic() > deadline:
                print((tmp / "api.log").read_text(errors="replace"))
                return 1
            time.sleep(0.1)

        requests = workload(args.requests)
        results, wall = asyncio.run(
            fire(f"http://127.0.0.1:{port}", requests, args.concurrency, args.deadline)
        )

        latencies = sorted(r[3] for r in results)
        statuses = Counter(r[1] for r in results)
        unanswered = len(requests) - len(results)
        errors = sum(n for code, n in statuses.items() if code != 201) + unanswered
        ids_by_tag: dict[str, set[str]] = {}
        for tag, status, exp_id, _ in results:
            if status == 201:
                ids_by_tag.setdefault(tag, set()).add(exp_id)
        split = sum(1 for ids in ids_by_tag.values() if len(ids) > 1)
        with session_scope(url) as session:
            stored = session.scalar(select(func.count()).select_from(Experiment))
        log_text = (tmp / "api.log").read_text(errors="replace")

        database = "postgres" if args.database_url else "sqlite"
        print(f"database     {database}, broker {broker.split(':', 1)[0]}")
        print(f"requests     {len(results)} at concurrency {args.concurrency}")
        print(f"statuses     {dict(sorted(statuses.items()))}, {unanswered} unanswered")
        print(f"errors       {errors} (non-201, incl. transport errors as 0)")
        print(f"experiments  {stored} stored, {len(ids_by_tag)} expected, {split} keys split")
        if "database is locked" in log_text:
            print(f"server log   {log_text.count('database is locked')} 'database is locked'")
        if errors:
            print("server log (last 3000 characters):\n" + log_text[-3000:])
        print(f"latency p50  {statistics.median(latencies) * 1000:8.1f} ms")
        print(f"latency p90  {pct(latencies, 0.90) * 1000:8.1f} ms")
        print(f"latency p99  {pct(latencies, 0.99) * 1000:8.1f} ms")
        print(f"throughput   {len(results) / wall:8.1f} requests/s ({wall:.1f} s wall)")
        return 0 if errors == 0 and not split else 1
    finally:
        if api is not None and api.poll() is None:
            api.terminate()
            try:
                api.wait(30)
            except subprocess.TimeoutExpired:
                api.kill()
                api.wait()
        if redis_server is not None:
            redis_server.stop()
        if url:
            drop_scratch(url)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
