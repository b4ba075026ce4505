"""Fair share on a live box: a late single run and a small owner against a 200-run sweep.

Run by hand: python benchmarks/bench_fairness.py [--sweep 200] [--workers 2]
    [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--broker-url URL]

Each policy (`fifo`, today's submission order, kept as ACTLAB_SCHEDULER=fifo for this
comparison, then `fair`) gets a fresh database, a live API (auth on) and `--workers` worker
processes, and the same workload: owner A (weight 1) creates a sweep of `--sweep` short runs,
then B (weight 1) submits one run, then C (weight 2) submits 20 runs one by one. Before it,
six runs of the same workload are trained so that the queue's start estimates have a
measured speed, as on a box in use (`WARM` runs: each worker's first one is cold).

Figures, from the database's attempts ledger (what each worker ran, when):
- B's wait: runs that started after B's submission and before B's run (goal: at most one
  per worker);
- shares over the contended window, from C's first submission to the start of C's last run
  (A and C both have queued work throughout): each owner's part of the worker time A and C
  used, against its part of their weights (goal: within 10%), and Jain's fairness index of
  share/weight (goal: at least 0.95);
- the start estimate's error: every queued experiment's `eta_seconds`, read from
  GET /v1/queue right after the last submission, against the moment it started: the
  median and 90th percentile of |predicted - actual|.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.scheduling.state import speeds  # noqa: E402
from core.store import owners  # noqa: E402
from core.store.db import session_scope  # noqa: E402
from core.store.models import Attempt, Experiment  # noqa: E402
from service import auth  # noqa: E402
from service.embedded import EmbeddedRedis  # noqa: E402
from tests.scratch import drop_scratch, scratch_database  # noqa: E402
from tests.support import canonical_spec  # noqa: E402

WEIGHTS = {"alice": 1.0, "bob": 1.0, "carol": 2.0}
SMALL = 20
# Runs of the workload before the measurement: each worker's first run is slow (imports,
# data generation), and the estimate is a median over the workload's last 20 runs.
WARM = 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_spec(seed: int) -> dict[str, Any]:
    """A run of a few seconds on this 2-core box."""
    return canonical_spec(seed=seed, training={"epochs": 3, "batch_size": 50})


def wait_log(path: Path, needle: str, proc: subprocess.Popen[bytes], limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while needle not in path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{path.name}: no {needle!r}\n" + path.read_text()[-3000:])
        time.sleep(0.1)


def wait_done(api: httpx.Client, ids: list[str], headers: dict[str, str]) -> None:
    pending = set(ids)
    while pending:
        for experiment_id in list(pending):
            status = api.get(f"/v1/experiments/{experiment_id}", headers=headers).json()["status"]
            if status in ("succeeded", "failed", "cancelled"):
                pending.discard(experiment_id)
        time.sleep(0.5)


def measure(policy: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    url = scratch_database(args.database_url, tmp, prefix=f"fair{policy}")
    broker = args.broker_url
    redis_server = None
    if not broker:
        redis_server = EmbeddedRedis(tmp / "redis").start()
        broker = f"redis+socket://{redis_server.socket}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTLAB_")}
    env.update(
        ACTLAB_DATA_DIR=str(tmp),
        ACTLAB_DATABASE_URL=url,
        ACTLAB_BROKER_URL=broker,
        ACTLAB_QUEUE=f"bench-{uuid.uuid4().hex[:8]}",
        ACTLAB_AUTH_ENABLED="true",
        ACTLAB_SCHEDULER=policy,
        ACTLAB_HEARTBEAT_SECONDS="1",
        ACTLAB_LEASE_SECONDS="15",
        ACTLAB_LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        api_log = tmp / "api.log"
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "actlab", "api", "--port", str(port)],
                env=env,
                cwd=ROOT,
                stdout=api_log.open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        wait_log(api_log, "Uvicorn running", procs[0])
        keys = {}
        with session_scope(url) as session:
            for name, weight in WEIGHTS.items():
                keys[name] = {"Authorization": f"Bearer {auth.create_key(session, owner=name)}"}
                owners.set_knobs(session, name, weight=weight)
            admin = {
                "Authorization": f"Bearer {auth.create_key(session, owner='root', admin=True)}"
            }
        for i in range(args.workers):
            log = tmp / f"w{i}.log"
            env_w = {**env, "ACTLAB_LOG_LEVEL": "INFO"}
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "actlab", "worker", "--name", f"w{i}@bench"],
                    env=env_w,
                    cwd=ROOT,
                    stdout=log.open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
            wait_log(log, " ready.", procs[-1])
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as api:
            warm = [
                api.post("/v1/experiments", json=run_spec(10_000 + i), headers=admin).json()["id"]
                for i in range(WARM)
            ]
            wait_done(api, warm, admin)
            sweep = {
                "name": "big",
                "base_spec": run_spec(0),
                "grid": {"activation.name": ["relu"]},
                "seeds": list(range(args.sweep)),
            }
            response = api.post("/v1/sweeps", json=sweep, headers=keys["alice"])
            assert response.status_code == 201, response.text
            a_ids = [e["id"] for e in response.json()["experiments"]]
            b_id = api.post("/v1/experiments", json=run_spec(1), headers=keys["bob"]).json()["id"]
            c_ids = [
                api.post("/v1/experiments", json=run_spec(100 + i), headers=keys["carol"]).json()[
                    "id"
                ]
                for i in range(SMALL)
            ]
            read_at = time.time()
            queue = api.get("/v1/queue", headers=admin).json()
            predicted = {
                item["id"]: read_at + item["queue"]["eta_seconds"]
                for item in queue["items"]
                if item["queue"] is not None and item["queue"]["eta_seconds"] is not None
            }
            wait_done(api, [b_id, *c_ids], admin)
            # The rest of A's sweep adds nothing to the figures: cancel it.
            for experiment_id in a_ids:
                api.post(f"/v1/experiments/{experiment_id}/cancel", headers=admin)
        with session_scope(url) as session:
            rows = session.execute(
                select(Attempt.experiment_id, Attempt.owner, Attempt.started_at, Attempt.ended_at)
            ).all()
            created = dict(session.execute(select(Experiment.id, Experiment.created_at)).all())
            rate = speeds(session, {"mnist1d/mlp"}).get("mnist1d/mlp")
            total = session.scalar(select(Experiment.progress_total).where(Experiment.id == b_id))
        out = figures(rows, created, b_id, c_ids, predicted)
        if os.environ.get("BENCH_FAIRNESS_DUMP"):
            firsts = {}
            for experiment_id, owner, started, _ in sorted(rows, key=lambda r: r[2]):
                firsts.setdefault(experiment_id, (owner, started.timestamp()))
            for item in queue["items"]:
                place = item["queue"] or {}
                actual = firsts.get(item["id"], (None, None))[1]
                print(
                    item["owner"],
                    item["status"],
                    place.get("position"),
                    place.get("eta_seconds"),
                    None if actual is None else round(actual - read_at, 1),
                )
        out["predicted_run_s"] = None if rate is None or total is None else rate * total
        return out
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        if redis_server is not None:
            redis_server.stop()
        drop_scratch(url)


def figures(
    rows: list[Any],
    created: dict[str, datetime],
    b_id: str,
    c_ids: list[str],
    predicted: dict[str, float],
) -> dict[str, Any]:
    first = {}
    for experiment_id, owner, started, ended in sorted(rows, key=lambda r: r[2]):
        first.setdefault(experiment_id, (owner, started, ended))
    b_start = first[b_id][1]
    b_wait = sum(1 for _, s, _ in first.values() if created[b_id] < s < b_start)
    t0 = min(created[i] for i in c_ids)
    t1 = max(first[i][1] for i in c_ids)
    used = {"alice": 0.0, "carol": 0.0}
    for _, owner, started, ended in rows:
        if owner in used and ended is not None:
            lo, hi = max(started, t0), min(ended, t1)
            used[owner] += max(0.0, (hi - lo).total_seconds())
    total = sum(used.values()) or 1.0
    weight_total = WEIGHTS["alice"] + WEIGHTS["carol"]
    share = {o: used[o] / total for o in used}
    target = {o: WEIGHTS[o] / weight_total for o in used}
    x = [share[o] / WEIGHTS[o] for o in used]
    jain = sum(x) ** 2 / (len(x) * sum(v * v for v in x)) if any(x) else 0.0
    errors = sorted(abs(first[i][1].timestamp() - t) for i, t in predicted.items() if i in first)
    durations = [(e - s).total_seconds() for _, _, s, e in rows if e is not None]
    return {
        "run_s": statistics.median(durations),
        "b_wait": b_wait,
        "share": share,
        "deviation": {o: share[o] / target[o] - 1 for o in used},
        "jain": jain,
        "window_s": (t1 - t0).total_seconds(),
        "eta_n": len(errors),
        "eta_median": statistics.median(errors) if errors else None,
        "eta_p90": errors[int(0.9 * (len(errors) - 1))] if errors else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--broker-url", default=None)
    parser.add_argument("--policies", default="fifo,fair")
    args = parser.parse_args()
    results = {}
    for policy in args.policies.split(","):
        tmp = Path(tempfile.mkdtemp(prefix=f"bench-fair-{policy}-"))
        try:
            started = time.monotonic()
            results[policy] = measure(policy, args, tmp)
            results[policy]["wall_s"] = time.monotonic() - started
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    database = "postgres" if args.database_url else "sqlite"
    broker = "redis" if args.broker_url else "embedded redis"
    load = os.getloadavg()[0]
    print(
        f"{database} + {broker}, {args.workers} workers, A: {args.sweep}-run sweep (w1),"
        f" B: 1 run (w1), C: {SMALL} runs (w2); load before the end {load:.1f}"
    )
    print(
        "| policy | B's wait (runs started ahead) | A share (target 0.33) | C share (target"
        " 0.67) | worst deviation | Jain | window | ETA error median / p90 (n) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for policy, r in results.items():
        worst = max(abs(v) for v in r["deviation"].values())
        eta = (
            f"{r['eta_median']:.1f} s / {r['eta_p90']:.1f} s ({r['eta_n']})"
            if r["eta_n"]
            else "none"
        )
        print(
            f"| {policy} | {r['b_wait']} | {r['share']['alice']:.3f} | {r['share']['carol']:.3f}"
            f" | {worst:.1%} | {r['jain']:.3f} | {r['window_s']:.0f} s | {eta} |"
        )
    for policy, r in results.items():
        print(
            f"{policy}: a run took {r['run_s']:.2f} s (median attempt), its estimate"
            f" {r['predicted_run_s'] or float('nan'):.2f} s; wall {r['wall_s']:.0f} s"
        )
    fair = results.get("fair")
    if fair is None:
        return 0
    ok = (
        fair["b_wait"] <= args.workers
        and max(abs(v) for v in fair["deviation"].values()) <= 0.10
        and fair["jain"] >= 0.95
    )
    print("goals (fair): " + ("met" if ok else "NOT met"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
