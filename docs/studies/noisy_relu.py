"""Generate docs/studies/noisy-relu.md and its figures through the client.

    actlab up &                                   # or any server: ACTLAB_URL, ACTLAB_API_KEY
    python docs/studies/noisy_relu.py [--epochs 10] [--out docs/studies]

Creates the study's two sweeps (once: re-running finds them by name), waits for them, and
writes the report from what the server returns.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import actlab

SIGMAS = [0.0, 0.1, 0.2, 0.3, 0.5, 1.0]
SCHEDULES = ["constant", "cosine"]
SEEDS = [0, 1, 2, 3, 4]
LAYERS = ["layer1", "layer2"]


def base_spec(epochs: int) -> dict[str, Any]:
    """The canonical MNIST-1D MLP, trained for `epochs`."""
    return {
        "dataset": {"name": "mnist1d"},
        "model": {"arch": "mlp", "hidden": [100, 100]},
        "activation": {"name": "noisy_relu", "params": {"sigma": 0.0}},
        "noise_schedule": {"kind": "constant", "start": 1.0, "end": 0.0, "unit": "step"},
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": epochs, "batch_size": 100},
    }


def sweeps(epochs: int) -> dict[str, dict[str, Any]]:
    """The noisy-ReLU grid (sigma x schedule x seeds) and the tanh reference."""
    base = base_spec(epochs)
    tanh = {**base, "activation": {"name": "tanh"}}
    return {
        f"study-noisy-relu-e{epochs}": {
            "base_spec": base,
            "grid": {"activation.params.sigma": SIGMAS, "noise_schedule.kind": SCHEDULES},
            "seeds": SEEDS,
            "baseline": {"activation.params.sigma": 0.0, "noise_schedule.kind": "constant"},
            "tags": ["study"],
        },
        f"study-tanh-e{epochs}": {"base_spec": tanh, "grid": {}, "seeds": SEEDS, "tags": ["study"]},
    }


def ensure(client: actlab.Client, epochs: int) -> list[str]:
    """The study's sweep ids, creating those not there yet."""
    existing = {s.name: s.id for s in client.sweeps.list()}
    ids = []
    for name, body in sweeps(epochs).items():
        if name not in existing:
            existing[name] = client.sweeps.create({"name": name, **body}).id
        ids.append(existing[name])
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--create-only", action="store_true", help="create the sweeps and exit")
    args = parser.parse_args()
    started = time.monotonic()
    with actlab.Client() as client:
        ids = ensure(client, args.epochs)
        print("sweeps:", *ids)
        if args.create_only:
            return
        for sweep_id in ids:
            client.sweeps.wait(sweep_id, progress=True)
        from report import write_report  # docs/studies/report.py, beside this script

        write_report(client, ids, args.out, waited_s=time.monotonic() - started)


if __name__ == "__main__":
    main()
