"""Reproduce the published reference numbers through the HTTP API (run by hand).

    python benchmarks/reproduce_published.py [--url URL] [--only mlp,cnn] [--seeds 0,1,2]

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
# The published protocol trains on all 4,000 training examples: no validation split.
MNIST1D = {"name": "mnist1d", "val_fraction": 0.0}
SEEDS = (0, 1, 2)

RUNS: dict[str, tuple[dict[str, Any], str, float]] = {
    # name: (spec, metric, threshold)
    "mlp": (
        {
            "dataset": MNIST1D,
            "model": {"arch": "mlp", "hidden": [100, 100]},
            "activation": {"name": "relu"},
            **REFERENCE,
        },
        "test/acc",
        0.65,
    ),
    "cnn": (
        {
            "dataset": MNIST1D,
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
        0.0167,  # "well beyond" the trivial 0.167: at least ten times lower
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
        [sys.executable, "-m", "actlab", "up"],
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


def _train(api: httpx.Client, spec: dict[str, Any]) -> dict[str, Any]:
    experiment_id = api.post("/v1/experiments", json=spec).raise_for_status().json()["id"]
    while True:
        body: dict[str, Any] = api.get(f"/v1/experiments/{experiment_id}").json()
        if body["status"] in {"succeeded", "failed", "cancelled"}:
            return body
        time.sleep(1)


def run(url: str, names: list[str], seeds: list[int]) -> int:
    """Each reference run over `seeds`; a run passes when its mean clears the threshold."""
    failures = 0
    with httpx.Client(base_url=url, timeout=30) as api:
        for name in names:
            spec, metric, threshold = RUNS[name]
            values = []
            for seed in seeds:
                body = _train(api, {**spec, "name": f"{name}-seed{seed}", "seed": seed})
                summary = body.get("summary") or {}
                values.append(summary.get(metric, float("nan")))
                print(
                    f"{name:11s} seed={seed} {body['status']:9s} {metric}={values[-1]:.4f} "
                    f"test/acc={summary.get('test/acc', float('nan')):.4f} "
                    f"steps={body['progress']['step']} wall={summary.get('wall_time_s')} s",
                    flush=True,
                )
            mean = sum(values) / len(values)
            higher = metric.endswith("acc")
            ok = mean >= threshold if higher else mean < threshold
            failures += not ok
            print(
                f"{name:11s} mean {metric}={mean:.4f} over {len(values)} seeds "
                f"({'>=' if higher else '<'} {threshold}: {'ok' if ok else 'MISSED'})",
                flush=True,
            )
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None)
    parser.add_argument("--only", default=",".join(RUNS))
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    if args.url:
        return run(args.url, names, seeds)
    proc, url, data = _start_embedded()
    try:
        return run(url, names, seeds)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
