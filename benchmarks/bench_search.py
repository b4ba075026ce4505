"""Successive halving that resumes, against the full grid and against restarting.

Run by hand: python benchmarks/bench_search.py [--epochs 9] [--seeds 3]

One `actlab up` (a fresh data directory, one worker), one client, three sweeps over the same
27-arm grid (NoisyReLU sigma x noise schedule kind x learning rate on MNIST-1D, `--seeds`
seeds each), run one after the other on the same worker:

- `grid`: every member trained to the end;
- `halving`: successive halving on val/acc (eta 3, rungs at 1, 3, 9 epochs), promoted
  members resuming from their checkpoints;
- `restart`: the same, but a promoted member trains again from step 0 (`resume: false`),
  which is what a stop-only pruner costs.

For each: the training steps its members took (the rung ladder gives them: a member that
reached rung i trained to rung i's step once when it resumes, and to every rung's step up to
i when it restarts; the resume figure is checked against the database's progress), the wall
time from creation to the last result, the arm it found (the best by mean test/acc among
its finished arms) and how far that arm's grid mean (test/acc over seeds) is below the
grid's best, in points and against the grid best's 95% CI.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import actlab  # noqa: E402
from core.rungs import compare_from_step  # noqa: E402
from core.search import rungs  # noqa: E402
from core.spec import ExperimentSpec  # noqa: E402
from core.spec.horizon import horizon  # noqa: E402
from core.spec.points import label  # noqa: E402

GRID = {
    "activation.params.sigma": [0.1, 0.3, 1.0],
    "noise_schedule.kind": ["constant", "cosine", "linear"],
    "optimizer.lr": [0.001, 0.003, 0.01],
}


def base_spec(epochs: int) -> dict[str, Any]:
    return {
        "dataset": {"name": "mnist1d"},
        "model": {"arch": "mlp", "hidden": [100, 100]},
        "activation": {"name": "noisy_relu", "params": {"sigma": 0.3}},
        "noise_schedule": {"kind": "constant", "start": 1.0, "end": 0.0},
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": epochs, "batch_size": 100, "checkpoint_interval_s": 0},
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_sweep(client: actlab.Client, body: dict[str, Any]) -> tuple[actlab.models.Sweep, float]:
    started = time.monotonic()
    created = client.sweeps.create(body)
    done = client.sweeps.wait(created.id, poll=0.5)
    return done, time.monotonic() - started


def steps_trained(sweep: Any, spec: dict[str, Any], *, resume: bool) -> int:
    """Training steps the members took, from where each one ended on the rung ladder."""
    total = horizon(ExperimentSpec.model_validate(spec)).total_steps
    if not sweep.search:
        return total * len(sweep.experiments)
    ladder = [r.step if r.step is not None else total for r in rungs(sweep.search, spec)]
    out = 0
    for e in sweep.experiments:
        reached = e.rung or 0
        out += ladder[reached] if resume else sum(ladder[: reached + 1])
    return out


def found(sweep: Any) -> str:
    """The best finished arm by mean test/acc (what the search would report), as the grid's
    label (an Optuna trial's point, less its number)."""
    done = [a for a in sweep.aggregate if a.n and a.mean is not None]
    best = max(done, key=lambda a: a.mean)
    return label({k: v for k, v in best.point.items() if k != "trial"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="bench-search-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTLAB_")}
    env.update(ACTLAB_DATA_DIR=str(data), ACTLAB_API_PORT=str(port), PYTHONPATH=str(ROOT))
    log = (data / "up.log").open("w")
    up = subprocess.Popen(
        [sys.executable, "-m", "actlab", "up"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{port}"
        with actlab.Client(url) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    next(iter(client.sweeps.list()), None)  # a request: a generator alone is none
                    break
                except actlab.ActlabError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            spec = base_spec(args.epochs)
            seeds = list(range(args.seeds))
            common = {"base_spec": spec, "grid": GRID, "seeds": seeds, "metric": "test/acc"}
            halving = {"kind": "successive_halving", "metric": "val/acc", "reduction_factor": 3}
            within = {**halving, "compare_within": ["noise_schedule.kind"]}
            # The same space for Optuna's TPE, with a third of the grid's runs: 9 trials.
            space = {
                path: {"type": "categorical", "choices": values} for path, values in GRID.items()
            }
            tpe = {"kind": "optuna", "sampler": "tpe", "metric": "val/acc", "space": space,
                   "n_trials": 9, "n_startup_trials": 3, "seed": 0}  # fmt: skip
            optuna_common = {k: v for k, v in common.items() if k != "grid"}
            bodies = {
                "grid": {"name": "grid", **common},
                "halving": {"name": "halving", **common, "search": halving},
                "restart": {"name": "restart", **common, "search": {**halving, "resume": False}},
                "halving within schedule": {"name": "within", **common, "search": within},
                "tpe": {"name": "tpe", **optuna_common, "search": tpe},
            }
            results = {name: run_sweep(client, body) for name, body in bodies.items()}
            # Each member's progress is where its last attempt stopped: for a resuming
            # search, the steps it trained (each step once).
            results_progress = {
                name: sum(
                    client.experiments.get(e.id).progress.step or 0 for e in sweep.experiments
                )
                for name, (sweep, _) in results.items()
            }
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
        log.close()
        shutil.rmtree(data, ignore_errors=True)
    grid, _ = results["grid"]
    means = {a.label: a for a in grid.aggregate}
    best = max(grid.aggregate, key=lambda a: a.mean or 0.0)
    full_steps = steps_trained(grid, spec, resume=True)
    print(f"27 arms x {args.seeds} seeds, {args.epochs} epochs; load {os.getloadavg()[0]:.1f}")
    ci = f"[{best.ci_low:.4f}, {best.ci_high:.4f}]"
    print(f"grid's best arm: {best.label}: test/acc {best.mean:.4f} {ci}")
    print()
    print(
        "| way | steps | of the grid's | wall s | found | its grid test/acc "
        "| below best (points) | within best's CI |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, (sweep, wall) in results.items():
        steps = steps_trained(sweep, spec, resume=name != "restart")
        arm = found(sweep)
        mean = means[arm].mean or 0.0
        within = best.ci_low is not None and mean >= best.ci_low
        print(
            f"| {name} | {steps} | {steps / full_steps:.2f} | {wall:.1f} | {arm} | {mean:.4f} "
            f"| {100 * ((best.mean or 0.0) - mean):.2f} | {'yes' if within else 'no'} |"
        )
    for kind in GRID["noise_schedule.kind"]:
        doc = {**spec, "noise_schedule": {**spec["noise_schedule"], "kind": kind}}
        step = compare_from_step("annealed", [doc])
        total = horizon(ExperimentSpec.model_validate(doc)).total_steps
        print(f"compare_after annealed, {kind}: no rung before step {step} of {total}")
    halving_sweep = results["halving"][0]
    print()
    print(f"halving: steps from the database's progress: {results_progress['halving']}; rungs:")
    for r in halving_sweep.rungs:
        counts = f"reached {r.reached}, promoted {r.promoted}, pruned {r.pruned}"
        print(f"  rung {r.rung} ({r.resource} epochs): {counts}")


if __name__ == "__main__":
    main()
