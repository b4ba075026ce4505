"""Reproduce the published reference numbers through the HTTP API (run by hand).

    python benchmarks/reproduce_published.py [--url http://127.0.0.1:8000] [--only mlp,cnn]

Without --url it starts `actlab up` on a scratch data directory (embedded SQLite and Redis)
and stops it at the end. Prints each run's final test metrics and wall time.

References: MNIST-1D (Greydanus 2020): MLP 68%, CNN 94% test accuracy with Adam lr 1e-2,
batch 100, 8000 steps. The adding problem's trivial baseline (always predict 1.0) has
MSE ~0.167; Gulcehre et al. 2016 use it with noisy gates.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx

REFERENCE = {
    "optimizer": {"name": "adam", "lr": 0.01},
    "training": {"epochs": 10_000, "max_steps": 8000, "batch_size": 100},
}

RUNS: dict[str, tuple[dict[str, Any], str, float]] = {
    # name: (spec, metric, threshold)
    "mlp": (
        {
            "dataset": {"name": "mnist1d"},
            "model": {"arch": "mlp", "hidden": [100, 100]},
            "activation": {"name": "relu"},
            **REFERENCE,
        },
        "test/acc",
        0.65,
    ),
    "cnn": (
        {
            "dataset": {"name": "mnist1d"},
            "model": {"arch": "cnn"},
            "activation": {"name": "relu"},
            **REFERENCE,
        },
        "test/acc",
        0.90,
    ),
    "digits": (
        {
            "dataset": {"name": "digits"},
            "model": {"arch": "mlp", "hidden": [100, 100]},
            "activation": {"name": "relu"},
            "optimizer": {"name": "adam", "lr": 0.001},
            "training": {"epochs": 60, "batch_size": 32},
        },
        "test/acc",
        0.95,
    ),
    "gru-adding": (
        {
            "dataset": {"name": "adding", "seq_len": 50, "num_samples": 20_000},
            "model": {
                "arch": "gru",
                "hidden_size": 64,
                "gate_activation": {"name": "noisy_hard_sigmoid"},
            },
            "activation": {"name": "noisy_hard_tanh"},
            "noise_schedule": {"kind": "linear", "start": 1.0, "end": 0.0},
            "optimizer": {"name": "adam", "lr": 0.003},
            "training": {"epochs": 1000, "max_steps": 3000, "batch_size": 100, "grad_clip": 1.0},
        },
        "test/loss",
        0.167,
    ),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_embedded() -> tuple[subprocess.Popen[bytes], str, str]:
    data = tempfile.mkdtemp(prefix="actlab-repro-", dir="/tmp")
    port = _free_port()
    env = {**os.environ, "ACTLAB_DATA_DIR": data, "ACTLAB_API_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "up"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url, data
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("actlab up did not become ready")


def run(url: str, names: list[str]) -> int:
    failures = 0
    with httpx.Client(base_url=url, timeout=30) as api:
        for name in names:
            spec, metric, threshold = RUNS[name]
            exp = api.post("/v1/experiments", json={**spec, "name": name}).raise_for_status()
            experiment_id = exp.json()["id"]
            while True:
                body = api.get(f"/v1/experiments/{experiment_id}").json()
                if body["status"] in {"succeeded", "failed", "cancelled"}:
                    break
                time.sleep(1)
            summary = body.get("summary") or {}
            value = summary.get(metric)
            ok = value is not None and (
                value >= threshold if metric.endswith("acc") else value < threshold
            )
            failures += not ok
            print(
                f"{name:11s} {body['status']:9s} {metric}={value} "
                f"({'>=' if metric.endswith('acc') else '<'} {threshold}: "
                f"{'ok' if ok else 'MISSED'}) steps={body['progress']['step']} "
                f"wall={summary.get('wall_time_s')} s  test/acc={summary.get('test/acc')}",
                flush=True,
            )
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None)
    parser.add_argument("--only", default=",".join(RUNS))
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    if args.url:
        return run(args.url, names)
    proc, url, data = _start_embedded()
    try:
        return run(url, names)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
