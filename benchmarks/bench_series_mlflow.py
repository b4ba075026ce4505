"""One experiment's 100,000-point series read over HTTP: actlab against MLflow, one run.

Run by hand: python benchmarks/bench_series_mlflow.py [--points 100000] [--repeats 7]
    [--mlflow "mlflow>=3,<4"] [--mlflow-venv DIR]

MLflow is installed into a throwaway virtualenv (or DIR, reused if it has one), its
tracking server is started on SQLite on a free loopback port and stopped at the end; the
same series is logged to it (log-batch) and read back whole with `get-history` (following
page tokens). actlab's API runs as `actlab api` on SQLite on another free port, with the
same points inserted into its database. Both are timed the same way, by the same client:
request, whole body, and `json.loads` of it (median of --repeats after one warm-up).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.spec.experiment import CANONICAL_EXAMPLE
from core.store import metrics
from core.store.db import get_engine, session_scope
from core.store.models import Experiment, new_id
from tests.scratch import scratch_database

ROOT = Path(__file__).resolve().parents[1]
NAME = "train/loss"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def value(step: int) -> float:
    return math.sin(step / 500) + 0.01 * math.sin(step * 1.7)


def timed(fn: Callable[[], int], repeats: int) -> tuple[float, int]:
    """Median milliseconds of fn() after a warm-up, and the points it returned."""
    points = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, points


@contextmanager
def server(args: list[str], env: dict[str, str], url: str, log: Path) -> Iterator[None]:
    """A child server, waited for until `url` answers, stopped (SIGTERM) at the end."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if httpx.get(url, timeout=2).status_code < 500:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{args[0]} did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def mlflow_python(spec: str, venv: Path) -> Path:
    """The throwaway virtualenv's python, with MLflow installed in it."""
    python = venv / "bin" / "python"
    if not (venv / "bin" / "mlflow").exists():
        print(f"installing {spec} into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", spec], check=True)
    return python


def mlflow_case(python: Path, tmp: Path, points: int, repeats: int) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    mlflow = str(python.parent / "mlflow")
    args = [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    args += ["--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}"]
    args += ["--default-artifact-root", str(tmp / "mlruns")]
    env = {**os.environ, "MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE": "true"}
    with (
        server(args, env, f"{base}/health", tmp / "mlflow.log"),
        httpx.Client(base_url=base, timeout=300) as client,
    ):
        api = "/api/2.0/mlflow"
        exp = client.post(f"{api}/experiments/create", json={"name": "bench"}).json()
        run = client.post(f"{api}/runs/create", json={"experiment_id": exp["experiment_id"]})
        run_id = run.json()["run"]["info"]["run_id"]
        now = int(time.time() * 1000)
        for start in range(0, points, 1000):
            batch = [
                {"key": NAME, "value": value(s), "timestamp": now, "step": s}
                for s in range(start, min(start + 1000, points))
            ]
            client.post(f"{api}/runs/log-batch", json={"run_id": run_id, "metrics": batch})

        def history() -> int:
            got, token = 0, None
            while True:
                params = {"run_id": run_id, "metric_key": NAME}
                if token:
                    params["page_token"] = token
                body = json.loads(client.get(f"{api}/metrics/get-history", params=params).content)
                got += len(body.get("metrics", []))
                token = body.get("next_page_token")
                if not token:
                    return got

        ms, n = timed(history, repeats)
        return {"MLflow get-history (whole series)": (ms, n)}


def fill_actlab(url: str, points: int) -> str:
    exp_id = new_id("exp")
    engine = get_engine(url)
    with engine.begin() as conn:
        row = {"id": exp_id, "name": "bench", "activation": "relu", "tags": []}
        conn.execute(insert(Experiment), [row | {"spec": CANONICAL_EXAMPLE, "status": "succeeded"}])
    with session_scope(url) as session:  # the store's writer: seqs, counts, rollup
        series = [(s, s // 1000, value(s)) for s in range(points)]
        metrics.write_series(session, exp_id, {NAME: series})
    engine.dispose()
    return exp_id


def actlab_case(tmp: Path, points: int, repeats: int) -> dict[str, Any]:
    url = scratch_database(None, tmp, prefix="bench")
    exp_id = fill_actlab(url, points)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTLAB_")}
    env |= {"ACTLAB_DATABASE_URL": url, "ACTLAB_AUTH_ENABLED": "false", "PYTHONPATH": str(ROOT)}
    env |= {"ACTLAB_DATA_DIR": str(tmp), "ACTLAB_BROKER_URL": "redis://127.0.0.1:1/0"}
    args = [sys.executable, "-m", "actlab", "api", "--port", str(port)]
    out: dict[str, Any] = {}
    with (
        server(args, env, f"{base}/healthz", tmp / "actlab.log"),
        httpx.Client(base_url=base, timeout=300) as client,
    ):
        path = f"/v1/experiments/{exp_id}/metrics"

        def read(params: dict[str, Any]) -> Callable[[], int]:
            def call() -> int:
                series = json.loads(client.get(path, params=params).content)["series"][NAME]
                return len(series["step"]) if isinstance(series, dict) else len(series)

            return call

        cases = {
            "actlab whole series (points)": {},
            "actlab whole series (format=columnar)": {"format": "columnar"},
            "actlab max_points=1000 (points)": {"max_points": 1000},
            "actlab max_points=1000 (format=columnar)": {"max_points": 1000, "format": "columnar"},
        }
        for label, params in cases.items():
            out[label] = timed(read({"name": NAME, **params}), repeats)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--mlflow", default="mlflow>=3,<4", help="pip requirement for MLflow")
    parser.add_argument("--mlflow-venv", type=Path, default=None, help="reuse this virtualenv")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="actlab-vs-mlflow-"))
    try:
        python = mlflow_python(args.mlflow, args.mlflow_venv or tmp / "mlflow-venv")
        version = subprocess.run(
            [str(python), "-c", "import mlflow; print(mlflow.__version__)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        (tmp / "a").mkdir()
        (tmp / "m").mkdir()
        results = mlflow_case(python, tmp / "m", args.points, args.repeats)
        results |= actlab_case(tmp / "a", args.points, args.repeats)
        mlflow_ms = results["MLflow get-history (whole series)"][0]
        print(f"\n{args.points:,}-point series, SQLite backends, loopback; MLflow {version}")
        print(f"median of {args.repeats}; request + body + json.loads\n")
        print(f"{'read':<44} {'points':>8} {'ms':>9} {'MLflow / this':>14}")
        for label, (ms, n) in results.items():
            print(f"{label:<44} {n:>8} {ms:>9.1f} {mlflow_ms / ms:>13.1f}x")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
