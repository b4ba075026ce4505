"""End to end through the API: a sweep with and without packing, POST to last success.

Run by hand: `python benchmarks/bench_packing_api.py [--members 16] [--steps 2000]`.

A temporary SQLite database, an embedded Redis, the API in process and one real worker
process (`python -m actlab worker`). The same sweep (MNIST-1D MLP [100, 100],
NoisyReLU, sigma spread over `--members` experiments, one seed each point) is posted
unpacked, then with `packing: {"max_members": members}`; each time is from the POST to the
moment the sweep's last experiment succeeded (polled every 0.2 s).
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from core.settings import Settings  # noqa: E402
from core.spec.experiment import CANONICAL_EXAMPLE  # noqa: E402
from service.app import create_app  # noqa: E402
from service.embedded import EmbeddedRedis  # noqa: E402
from tests.scratch import drop_scratch, scratch_database  # noqa: E402


def sweep_body(members: int, steps: int, packing: bool) -> dict:
    base = copy.deepcopy(CANONICAL_EXAMPLE)
    del base["name"], base["seed"]
    base["activation"] = {"name": "noisy_relu"}
    base["training"] = {"epochs": 10_000, "max_steps": steps, "batch_size": 100}
    sigmas = [round(0.05 + 0.45 * i / max(members - 1, 1), 4) for i in range(members)]
    body = {
        "name": f"bench-{'packed' if packing else 'alone'}",
        "base_spec": base,
        "grid": {"activation.params.sigma": sigmas},
        "seeds": [0],
    }
    return {**body, "packing": {"max_members": members}} if packing else body


def time_sweep(api: TestClient, body: dict, deadline_s: float) -> float:
    start = time.perf_counter()
    created = api.post("/v1/sweeps", json=body)
    created.raise_for_status()
    sweep_id = created.json()["id"]
    while time.perf_counter() - start < deadline_s:
        counts = api.get(f"/v1/sweeps/{sweep_id}").json()["status_counts"]
        if counts.get("succeeded", 0) == len(body["grid"]["activation.params.sigma"]):
            return time.perf_counter() - start
        if counts.get("failed") or counts.get("cancelled"):
            raise RuntimeError(f"sweep {sweep_id}: {counts}")
        time.sleep(0.2)
    raise TimeoutError(f"sweep {sweep_id} not done after {deadline_s} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--deadline", type=float, default=3600.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="actlab-pack-", dir="/tmp"))  # short: Unix socket
    redis_server = EmbeddedRedis(tmp / "redis").start()
    url = scratch_database(None, tmp, prefix="bench")
    settings = Settings(
        data_dir=tmp / "data",
        database_url=url,
        broker_url=f"redis+socket://{redis_server.socket}",
        checkpoint_dir=tmp / "checkpoints",
        queue=f"bench-{uuid.uuid4().hex[:8]}",
        auth_enabled=False,
        log_level="WARNING",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTLAB_")}
    env.update(
        ACTLAB_DATA_DIR=str(settings.data_dir),
        ACTLAB_DATABASE_URL=url,
        ACTLAB_BROKER_URL=settings.broker_url,
        ACTLAB_CHECKPOINT_DIR=str(settings.checkpoint_dir),
        ACTLAB_QUEUE=settings.queue,
        ACTLAB_AUTH_ENABLED="false",
        PYTHONPATH=str(ROOT),
    )
    log = (tmp / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "actlab", "worker"], env=env, cwd=ROOT, stdout=log, stderr=log
    )
    try:
        with TestClient(create_app(settings)) as api:
            time_sweep(api, sweep_body(2, 20, packing=True), args.deadline)  # warm up, data
            alone = time_sweep(api, sweep_body(args.members, args.steps, False), args.deadline)
            packed = time_sweep(api, sweep_body(args.members, args.steps, True), args.deadline)
        print(f"{args.members} experiments x {args.steps} steps, one worker, SQLite")
        print("| sweep | POST to last success, s |\n| --- | --- |")
        print(f"| unpacked | {alone:.1f} |\n| packed | {packed:.1f} |")
        print(f"speed-up {alone / packed:.2f}x")
        return 0
    finally:
        worker.terminate()
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
        redis_server.stop()
        drop_scratch(url)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
