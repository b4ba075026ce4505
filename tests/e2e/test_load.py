"""Issue 6: 1000 concurrent POSTs, half of them Idempotency-Key retries, lose nothing.

The real API runs as a child process on the test's database and broker, with no worker, so
every experiment must end up `queued` (stored and sent), exactly once per distinct request.
"""

from __future__ import annotations

import asyncio
import random
import socket
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import func, select

from core.settings import Settings
from core.store.db import session_scope
from core.store.models import Experiment
from tests.support import HANG_S, Process, canonical_spec, settings_env

pytestmark = pytest.mark.integration

PLAIN = 500  # distinct requests without a key
KEYS = 250  # distinct Idempotency-Keys, each sent twice at once
CONCURRENCY = PLAIN + 2 * KEYS  # every request in flight at once
DEADLINE_S = HANG_S  # only a stalled server reaches it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _redis(url: str) -> redis.Redis:
    if url.startswith("redis+socket://"):
        return redis.Redis(unix_socket_path=url.removeprefix("redis+socket://"))
    return redis.Redis.from_url(url)


async def _fire(base_url: str) -> tuple[list[dict[str, Any]], float]:
    """Send the workload; one record per request: kind, key, status, body, latency."""
    units: list[list[tuple[str, dict[str, str], dict[str, Any]]]] = []
    for i in range(PLAIN):
        units.append([(f"plain-{i}", {}, canonical_spec(seed=i, name=f"load-plain-{i}"))])
    for k in range(KEYS):
        body = canonical_spec(seed=100_000 + k, name=f"load-key-{k}")
        headers = {"Idempotency-Key": f"load-key-{k}"}
        units.append([(f"key-{k}", headers, body), (f"key-{k}", headers, body)])
    random.Random(6).shuffle(units)  # pairs stay adjacent, so both copies start together

    semaphore = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    results: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=HANG_S, limits=limits) as api:

        async def post(tag: str, headers: dict[str, str], body: dict[str, Any]) -> None:
            async with semaphore:
                start = time.perf_counter()
                try:
                    response = await api.post("/v1/experiments", json=body, headers=headers)
                except httpx.TransportError as exc:  # recorded, so the report shows them all
                    error = {"error": repr(exc)}
                    results.append({"tag": tag, "status": 0, "body": error, "s": 0.0})
                    return
                latency = time.perf_counter() - start
            try:
                payload = response.json()
            except ValueError:
                payload = {"raw": response.text[:500]}
            results.append(
                {"tag": tag, "status": response.status_code, "body": payload, "s": latency}
            )

        started = time.perf_counter()
        tasks = [post(*req) for unit in units for req in unit]
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), DEADLINE_S)
        except asyncio.TimeoutError:
            statuses = Counter(r["status"] for r in results)
            pytest.fail(
                f"only {len(results)} of {len(tasks)} POSTs answered in {DEADLINE_S}s: "
                f"{dict(statuses)}; first failures: "
                f"{[r for r in results if r['status'] != 201][:3]}"
            )
        return results, time.perf_counter() - started


def _first_error(api: Process) -> str:
    """The server's first error line (e.g. sqlite3's "database is locked"), for the report."""
    lines = [line for line in api.output().splitlines() if "Error:" in line]
    return lines[0] if lines else ""


def _pages(base_url: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    with httpx.Client(base_url=base_url, timeout=HANG_S) as api:
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = api.get("/v1/experiments", params=params).raise_for_status().json()
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return items


def test_1000_concurrent_posts_lose_nothing(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"max_queued_per_owner": 100_000})
    port = _free_port()
    api = Process(
        [sys.executable, "-m", "actlab", "api", "--port", str(port)],
        settings_env(settings),
        tmp_path / "api.log",
    )
    broker = _redis(settings.resolved_broker_url)
    base_url = f"http://127.0.0.1:{port}"
    try:
        api.wait_for("Uvicorn running")
        results, wall = asyncio.run(_fire(base_url))

        latencies = sorted(r["s"] for r in results)
        p50 = statistics.median(latencies)
        p99 = latencies[int(0.99 * (len(latencies) - 1))]
        database = settings.resolved_database_url.split(":", 1)[0]
        print(
            f"\nload ({database}): {len(results)} POSTs at concurrency {CONCURRENCY} in "
            f"{wall:.1f}s = {len(results) / wall:.0f} req/s; "
            f"latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
        )

        statuses = Counter(r["status"] for r in results)
        failures = [r for r in results if r["status"] != 201]
        errors = [r for r in failures if r["status"] == 0 or r["status"] >= 500]
        assert not errors, (dict(statuses), errors[:3], _first_error(api))
        assert not failures, (dict(statuses), failures[:3])

        by_tag: dict[str, set[str]] = {}
        for r in results:
            by_tag.setdefault(r["tag"], set()).add(r["body"]["id"])
        split = [tag for tag, ids in by_tag.items() if len(ids) != 1]
        assert not split, f"one key, several experiments: {split[:5]}"
        expected = {next(iter(ids)) for ids in by_tag.values()}
        assert len(expected) == PLAIN + KEYS

        # What the API lists, and what the database holds, is exactly what it answered.
        listed = _pages(base_url)
        assert len(listed) == len({e["id"] for e in listed}) == PLAIN + KEYS
        assert {e["id"] for e in listed} == expected
        with session_scope(settings.resolved_database_url) as session:
            rows = dict(
                session.execute(
                    select(Experiment.status, func.count()).group_by(Experiment.status)
                ).all()
            )
            stored = set(session.scalars(select(Experiment.id)))
        assert rows == {"queued": PLAIN + KEYS}, rows
        assert stored == expected

        # Each one was sent to the workers at least once (no worker consumes them here).
        assert broker.llen(settings.queue) >= PLAIN + KEYS
    finally:
        api.stop()
        broker.delete(settings.queue)
        broker.close()
    assert "database is locked" not in api.output()
    assert "Traceback" not in api.output(), api.output()[-4000:]
