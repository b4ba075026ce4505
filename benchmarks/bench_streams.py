"""N concurrent live streams on a training experiment (or a sweep) against real processes.

Run by hand (the full matrix, both databases, in a few minutes):

    python benchmarks/bench_streams.py --streams 100 1000 --target experiment sweep \
        --database-url sqlite postgresql+psycopg://postgres@127.0.0.1:5432/test \
        --broker-url redis://127.0.0.1:6379/0

`sqlite` is a temporary SQLite file with an embedded Redis; a Postgres URL gets a scratch
schema (created and dropped) and the --broker-url Redis (embedded when not given). Per
database: one API process; per row, N SSE streams on a training experiment (or on a
2-experiment sweep) opened by lean client processes (benchmarks/stream_client.py, one per
core, raw sockets: the client shares the machine, so it is kept cheap and off the API's
event loop). While they are open, `/healthz` and `GET /v1/experiments/{id}` are timed; the
baseline is the same requests with no stream open, in the same run. A worker process
starts once every stream is open, so every point is delivered live. Delivery latency is
from the moment the worker's post-commit message reaches the benchmark's own subscription
to the live channel to a point's arrival in a client. At the end every stream's points are
compared with the database: lost and duplicate points are counted. `--profile-api FILE`
runs the API under cProfile (slower; for finding hot spots, not for the table).
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

from core.settings import Settings  # noqa: E402
from core.store.publish import channel  # noqa: E402
from service.embedded import EmbeddedRedis  # noqa: E402
from tests.scratch import drop_scratch, scratch_database  # noqa: E402

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


def _by_second(timeline: list[tuple[float, float]]) -> dict[int, float]:
    """Delivery p99 (ms) of the points committed in each second of the live phase."""
    buckets: dict[int, list[float]] = {}
    for committed, latency in timeline:
        buckets.setdefault(int(committed), []).append(latency)
    return {second: round(pct(v, 0.99) * 1e3) for second, v in sorted(buckets.items())}


def _ms(values: list[float]) -> tuple[float, float]:
    return pct(values, 0.5) * 1e3, pct(values, 0.99) * 1e3


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
                seen.setdefault((body["experiment_id"], row[1], row[2]), time.monotonic())
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


CLIENT = Path(__file__).with_name("stream_client.py")


async def open_clients(
    base: str, path: str, n: int, log_dir: Path
) -> list[tuple[asyncio.subprocess.Process, Path]]:
    """Client processes (one per core) holding `n` streams in all, once all are open."""
    port = base.rsplit(":", 1)[1]
    count = max(1, min(os.cpu_count() or 1, n // 50 or 1))
    clients = []
    for k in range(count):
        share = n // count + (1 if k < n % count else 0)
        out = log_dir / f"client-{uuid.uuid4().hex[:6]}.json"
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(CLIENT), "--port", port, "--path", path,
            "--streams", str(share), "--out", str(out), stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        clients.append((process, out))
    for process, _ in clients:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=300)
        if line.strip() != b"connected":
            raise RuntimeError(f"a stream client failed to connect: {line!r}")
    return clients


def client_results(clients: list[tuple[asyncio.subprocess.Process, Path]]) -> list[Any]:
    """Per stream: {points: [(key, arrival)], ended, reconnects, closed, error}."""
    streams = []
    for _, out in clients:
        body = json.loads(out.read_text())
        frames = [
            [(p.get("experiment_id"), p["name"], p["step"]) for p in points]
            for points in body["frames"]
        ]
        for stream in body["streams"]:
            stream["points"] = [(k, t) for i, t in stream["arrivals"] for k in frames[i]]
            streams.append(stream)
    return streams


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def box_cpu_seconds() -> float:
    """CPU time every process on the machine used so far (user + nice + system, /proc/stat):
    with the API, the worker, the stream clients, Redis and this process all on one box,
    how close the run came to using every core."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system = (int(x) for x in fields[:3])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


async def bench(
    base: str, pid: int, settings: Settings, n: int, target: str, log_dir: Path
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as api:
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
        clients = await open_clients(base, path, n, log_dir)
        opened, cpu_before = time.monotonic(), cpu_seconds(pid)
        box_before = box_cpu_seconds()
        loaded: dict[str, list[float]] = {"healthz": [], "get": []}
        async with worker_process(settings, log_dir):
            while any(p.returncode is None for p, _ in clients):
                loaded["healthz"] += await probe(api, "/healthz", 5)
                loaded["get"] += await probe(api, f"/v1/experiments/{probe_id}", 5)
                await asyncio.sleep(0.05)
        live = {
            "seconds": time.monotonic() - opened,
            "api_cpu": cpu_seconds(pid) - cpu_before,
            "box_cpu": box_cpu_seconds() - box_before,
        }
        stop.set()
        commit_times = await commits
        stored: set[tuple[Any, ...]] = set()
        for i in ids:
            series = (await api.get(f"/v1/experiments/{i}/metrics")).json()["series"]
            key = i if target == "sweep" else None
            stored |= {(key, name, p["step"]) for name, pts in series.items() for p in pts}
    streams = client_results(clients)
    row = report(n, target, opened, baseline, loaded, streams, stored, commit_times)
    return {
        **row,
        "live_s": live["seconds"],
        "api_cpu_s": live["api_cpu"],
        "box_cpu_s": live["box_cpu"],
    }


def report(
    n: int,
    target: str,
    opened: float,
    baseline: dict[str, list[float]],
    loaded: dict[str, list[float]],
    streams: list[Any],
    stored: set[tuple[Any, ...]],
    commit_times: dict[tuple[Any, ...], float],
) -> dict[str, Any]:
    lost = duplicates = 0
    latencies = []
    timeline: list[tuple[float, float]] = []
    # Points committed before every stream was open arrive by replay: not delivery latency.
    by_key = {k if target == "sweep" else (None, *k[1:]): v for k, v in commit_times.items()}
    for stream in streams:
        got = Counter(tuple(k) for k, _ in stream["points"])
        lost += len(stored - set(got))
        duplicates += sum(c - 1 for c in got.values())
        for key, at in stream["points"]:
            committed = by_key.get(tuple(key))
            if committed is not None and committed > opened:
                latencies.append(at - committed)
                timeline.append((committed - opened, at - committed))
    return {
        "streams": n,
        "target": target,
        "points": len(stored),
        "healthz_base_ms": _ms(baseline["healthz"]),
        "healthz_ms": _ms(loaded["healthz"]),
        "get_base_ms": _ms(baseline["get"]),
        "get_ms": _ms(loaded["get"]),
        "delivery_ms": _ms(latencies),
        "delivery_by_second": _by_second(timeline),
        "lost": lost,
        "duplicates": duplicates,
        "reconnects": sum(s["reconnects"] for s in streams),
        "errors": Counter(s["error"] for s in streams if s["error"]),
    }


def child_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTLAB_")}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"ACTLAB_{name.upper()}"] = str(value)
    env["PYTHONPATH"] = str(ROOT)
    return env


CLI = [sys.executable, "-m", "actlab"]


def _healthy(base: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{base}/healthz").status_code == 200
    return False


@contextlib.contextmanager
def api_process(
    settings: Settings, log_dir: Path, profile: str | None
) -> Iterator[tuple[str, int]]:
    """An API process on `settings` (under cProfile, writing `profile`); yields its URL
    and pid."""
    port = free_port()
    wrapper = [str(Path(__file__).with_name("profile_api.py")), profile] if profile else []
    command = wrapper or ["-m", "actlab"]
    with (log_dir / "api.log").open("wb") as log:
        api = subprocess.Popen(
            [sys.executable, *command, "api", "--port", str(port)],
            env=child_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while not _healthy(base):
                if time.monotonic() > deadline or api.poll() is not None:
                    tail = (log_dir / "api.log").read_text()[-2000:]
                    raise RuntimeError(f"the API did not start:\n{tail}")
                time.sleep(0.2)
            yield base, api.pid
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
    parser.add_argument("--database-url", nargs="+", default=["sqlite"])
    parser.add_argument("--broker-url", default=None, help="Redis for non-SQLite databases")
    parser.add_argument("--profile-api", default=None, help="cProfile output of the API")
    parser.add_argument("--epochs", type=int, default=SPEC["training"]["epochs"])
    args = parser.parse_args()
    SPEC["training"]["epochs"] = args.epochs  # fewer: a shorter run on a loaded machine
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"load: {os.getloadavg()}, cores: {os.cpu_count()}", flush=True)
    rows = []
    for database in args.database_url:
        broker = None if database == "sqlite" else args.broker_url
        db = "sqlite" if database == "sqlite" else database.split(":", 1)[0].split("+")[0]
        for row in run_database(None if database == "sqlite" else database, broker, args):
            rows.append({"db": db, **row})
    print_table(rows)
    print(f"load: {os.getloadavg()}", flush=True)
    return 1 if any(r["lost"] or r["duplicates"] or r["errors"] for r in rows) else 0


def run_database(
    database_url: str | None, broker_url: str | None, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Every (target, streams) row on one database, against one API process."""
    work = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    redis_dir = Path(f"/tmp/bs-{uuid.uuid4().hex[:6]}")
    broker = None if broker_url else EmbeddedRedis(redis_dir).start()
    url = scratch_database(database_url, work)
    settings = Settings(
        data_dir=work,
        database_url=url,
        broker_url=broker_url or f"redis+socket://{broker.socket}",  # type: ignore[union-attr]
        queue=f"bench-{uuid.uuid4().hex[:8]}",
        auth_enabled=False,
        max_streams_total=max(args.streams) + 10,
    )
    rows = []
    try:
        with api_process(settings, work, args.profile_api) as (base, pid):
            for target in args.target:
                for n in args.streams:
                    rows.append(asyncio.run(bench(base, pid, settings, n, target, work)))
                    print(json.dumps(rows[-1], default=str), flush=True)
    finally:
        drop_scratch(url)
        if broker:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(redis_dir, ignore_errors=True)
    return rows


def _pair(values: tuple[float, float], digits: int = 1) -> str:
    return f"{values[0]:.{digits}f}/{values[1]:.{digits}f}"


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        "\n| db | target | streams | points | /healthz p50/p99 ms (no streams) "
        "| GET experiment p50/p99 ms (no streams) | delivery p50/p99 ms | lost | dup "
        "| reconnects | errors | live s | API CPU s | box busy |"
    )
    print("|" + " --- |" * 14)
    for r in rows:
        cells = [
            r["db"],
            r["target"],
            str(r["streams"]),
            str(r["points"]),
            f"{_pair(r['healthz_ms'])} ({_pair(r['healthz_base_ms'])})",
            f"{_pair(r['get_ms'])} ({_pair(r['get_base_ms'])})",
            _pair(r["delivery_ms"], 0),
            str(r["lost"]),
            str(r["duplicates"]),
            str(r["reconnects"]),
            str(dict(r["errors"])),
            f"{r['live_s']:.0f}",
            f"{r['api_cpu_s']:.1f}",
            # the share of every core the whole machine used while the streams were open
            f"{r['box_cpu_s'] / (r['live_s'] * (os.cpu_count() or 1)):.0%}",
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
