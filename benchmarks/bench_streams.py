"""N concurrent live streams on a training experiment (or a sweep) against real processes.

Run by hand: python benchmarks/bench_streams.py [--streams 100 1000] [--target experiment]
    [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--broker-url URL]

An API process; the benchmark opens N SSE streams on a training
experiment (or on a 2-experiment sweep) and, while they are open, times `/healthz` and
`GET /v1/experiments/{id}`. A worker process starts once every stream is open, so
every point is delivered live. The baseline is the same requests with no stream open, in
the same run. Delivery latency is measured from the moment the worker's post-commit
message reaches the benchmark's own subscription to the live channel to a point's arrival
in each stream. At the end, every stream's points are compared with the database:
lost and duplicate points are counted. Default: a temporary SQLite file and an embedded
Redis; with --database-url (Postgres) a scratch schema is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.embedded import EmbeddedRedis  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.store.live import channel  # noqa: E402
from service.store.scratch import drop_scratch, scratch_database  # noqa: E402

SPEC: dict[str, Any] = {
    "dataset": {"name": "moons", "num_samples": 2000},
    "model": {"arch": "mlp", "hidden": [32, 32]},
    "activation": {"name": "noisy_relu", "params": {"sigma": 0.3}},
    "training": {"epochs": 40, "batch_size": 100, "diagnostics_every": 1},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(values: list[float]) -> tuple[float, float]:
    return pct(values, 0.5) * 1e3, pct(values, 0.99) * 1e3


class Stream:
    """One SSE client: the points it got, when, and how many times."""

    def __init__(self) -> None:
        self.arrivals: dict[tuple[Any, ...], float] = {}
        self.duplicates = 0
        self.ended = False
        self.error: str | None = None
        self.connected = asyncio.Event()

    async def run(self, api: httpx.AsyncClient, path: str) -> None:
        last_id = None
        try:
            while not self.ended:
                headers = {"Accept": "text/event-stream"}
                if last_id:
                    headers["Last-Event-ID"] = last_id
                async with api.stream("GET", path, headers=headers) as response:
                    if response.status_code != 200:
                        self.error = f"HTTP {response.status_code}"
                        return
                    self.connected.set()
                    last_id = await self._read(response, last_id)
        except (httpx.HTTPError, OSError) as exc:
            self.error = type(exc).__name__
        finally:
            self.connected.set()

    async def _read(self, response: httpx.Response, last_id: str | None) -> str | None:
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line:
                if not line.startswith(":"):
                    key, _, value = line.partition(":")
                    fields[key] = value.removeprefix(" ")
                continue
            last_id = fields.get("id", last_id)
            if fields.get("event") == "metrics":
                now = time.perf_counter()
                for p in json.loads(fields["data"]):
                    key = (p.get("experiment_id"), p["name"], p["step"])
                    if key in self.arrivals:
                        self.duplicates += 1
                    self.arrivals[key] = now
            elif fields.get("event") == "end":
                self.ended = True
                return last_id
            fields = {}
        return last_id


async def committed_at(settings: Settings, stop: asyncio.Event) -> dict[tuple[Any, ...], float]:
    """When each point's post-commit message reached a subscriber (the delivery baseline)."""
    seen: dict[tuple[Any, ...], float] = {}
    url = settings.resolved_broker_url
    client = (
        aioredis.Redis(unix_socket_path=url.removeprefix("redis+socket://"))
        if url.startswith("redis+socket://")
        else aioredis.Redis.from_url(url)
    )
    pubsub = client.pubsub()
    await pubsub.subscribe(channel(settings))
    while not stop.is_set():
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if message:
            body = json.loads(message["data"])
            for row in body["metrics"]:
                seen.setdefault((body["experiment_id"], row[1], row[2]), time.perf_counter())
    await client.aclose()
    return seen


async def probe(api: httpx.AsyncClient, path: str, n: int) -> list[float]:
    """Latency (s) of `n` sequential GETs of `path`."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        response = await api.get(path)
        out.append(time.perf_counter() - start)
        response.raise_for_status()
    return out


async def bench(
    base: str, settings: Settings, n: int, target: str, log_dir: Path
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    timeout = httpx.Timeout(60.0, read=600.0)
    async with (
        httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as streams_api,
        httpx.AsyncClient(base_url=base, timeout=60) as api,
    ):
        if target == "sweep":
            body = {"name": "bench", "base_spec": SPEC, "grid": {}, "seeds": [0, 1]}
            sweep = (await api.post("/v1/sweeps", json=body)).raise_for_status().json()
            ids = [e["id"] for e in sweep["experiments"]]
            path, probe_id = f"/v1/sweeps/{sweep['id']}/events", ids[0]
        else:
            exp = (await api.post("/v1/experiments", json=SPEC)).raise_for_status().json()
            ids, path, probe_id = [exp["id"]], f"/v1/experiments/{exp['id']}/events", exp["id"]
        baseline = {
            "healthz": await probe(api, "/healthz", 100),
            "get": await probe(api, f"/v1/experiments/{probe_id}", 100),
        }
        stop = asyncio.Event()
        commits = asyncio.create_task(committed_at(settings, stop))
        clients = [Stream() for _ in range(n)]
        tasks = [asyncio.create_task(c.run(streams_api, path)) for c in clients]
        await asyncio.gather(*(c.connected.wait() for c in clients))
        opened = time.perf_counter()
        loaded: dict[str, list[float]] = {"healthz": [], "get": []}
        async with worker_process(settings, log_dir):
            while not all(c.ended or c.error for c in clients):
                loaded["healthz"] += await probe(api, "/healthz", 5)
                loaded["get"] += await probe(api, f"/v1/experiments/{probe_id}", 5)
                await asyncio.sleep(0.05)
            await asyncio.gather(*tasks)
        stop.set()
        commit_times = await commits
        stored: set[tuple[Any, ...]] = set()
        for i in ids:
            series = (await api.get(f"/v1/experiments/{i}/metrics")).json()["series"]
            key = i if target == "sweep" else None
            stored |= {(key, name, p["step"]) for name, pts in series.items() for p in pts}
    return report(n, target, opened, baseline, loaded, clients, stored, commit_times)


def report(
    n: int,
    target: str,
    opened: float,
    baseline: dict[str, list[float]],
    loaded: dict[str, list[float]],
    clients: list[Stream],
    stored: set[tuple[Any, ...]],
    commit_times: dict[tuple[Any, ...], float],
) -> dict[str, Any]:
    lost = sum(len(stored - set(c.arrivals)) for c in clients)
    # Points committed before every stream was open arrive by replay: not delivery latency.
    by_key = {k if target == "sweep" else (None, *k[1:]): v for k, v in commit_times.items()}
    latencies = [
        at - by_key[key]
        for c in clients
        for key, at in c.arrivals.items()
        if key in by_key and by_key[key] > opened
    ]
    return {
        "streams": n,
        "target": target,
        "points": len(stored),
        "healthz_base_ms": (
            pct(baseline["healthz"], 0.5) * 1e3,
            pct(baseline["healthz"], 0.99) * 1e3,
        ),
        "healthz_ms": (pct(loaded["healthz"], 0.5) * 1e3, pct(loaded["healthz"], 0.99) * 1e3),
        "get_base_ms": (pct(baseline["get"], 0.5) * 1e3, pct(baseline["get"], 0.99) * 1e3),
        "get_ms": (pct(loaded["get"], 0.5) * 1e3, pct(loaded["get"], 0.99) * 1e3),
        "delivery_ms": (pct(latencies, 0.5) * 1e3, pct(latencies, 0.99) * 1e3),
        "lost": lost,
        "duplicates": sum(c.duplicates for c in clients),
        "errors": Counter(c.error for c in clients if c.error),
    }


def child_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTLAB_")}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"ACTLAB_{name.upper()}"] = str(value)
    env["PYTHONPATH"] = str(ROOT)
    return env


CLI = [sys.executable, "-m", "service.cli"]


@contextlib.contextmanager
def api_process(settings: Settings, log_dir: Path) -> Iterator[str]:
    """An API process on `settings`; yields its base URL."""
    port = free_port()
    with (log_dir / "api.log").open("wb") as log:
        api = subprocess.Popen(
            [*CLI, "api", "--port", str(port)],
            env=child_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                time.sleep(0.2)
            yield base
        finally:
            api.terminate()
            api.wait(60)


@contextlib.asynccontextmanager
async def worker_process(settings: Settings, log_dir: Path) -> AsyncIterator[None]:
    """A worker process, started once every stream is open (so points arrive live)."""
    log_path = log_dir / f"worker-{uuid.uuid4().hex[:6]}.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [*CLI, "worker"], env=child_env(settings), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield
        finally:
            worker.terminate()
            await asyncio.to_thread(worker.wait, 60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[100])
    parser.add_argument(
        "--target", choices=["experiment", "sweep"], nargs="+", default=["experiment", "sweep"]
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--broker-url", default=None)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    redis_dir = Path(f"/tmp/bs-{uuid.uuid4().hex[:6]}")
    broker = None if args.broker_url else EmbeddedRedis(redis_dir).start()
    url = scratch_database(args.database_url, work)
    settings = Settings(
        data_dir=work,
        database_url=url,
        broker_url=args.broker_url or f"redis+socket://{broker.socket}",  # type: ignore[union-attr]
        queue=f"bench-{uuid.uuid4().hex[:8]}",
        auth_enabled=False,
        max_streams_total=max(args.streams) + 10,
    )
    rows = []
    try:
        with api_process(settings, work) as base:
            for target in args.target:
                for n in args.streams:
                    rows.append(asyncio.run(bench(base, settings, n, target, work)))
                    print(json.dumps(rows[-1], default=str), flush=True)
    finally:
        drop_scratch(url)
        if broker:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(redis_dir, ignore_errors=True)
    print_table(rows, "postgres" if args.database_url else "sqlite")
    return 1 if any(r["lost"] or r["duplicates"] or r["errors"] for r in rows) else 0


def _pair(values: tuple[float, float], digits: int = 1) -> str:
    return f"{values[0]:.{digits}f}/{values[1]:.{digits}f}"


def print_table(rows: list[dict[str, Any]], db: str) -> None:
    print(
        "\n| db | target | streams | points | /healthz p50/p99 ms (no streams) "
        "| GET experiment p50/p99 ms (no streams) | delivery p50/p99 ms | lost | dup | errors |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        cells = [
            db,
            r["target"],
            str(r["streams"]),
            str(r["points"]),
            f"{_pair(r['healthz_ms'])} ({_pair(r['healthz_base_ms'])})",
            f"{_pair(r['get_ms'])} ({_pair(r['get_base_ms'])})",
            _pair(r["delivery_ms"], 0),
            str(r["lost"]),
            str(r["duplicates"]),
            str(dict(r["errors"])),
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
