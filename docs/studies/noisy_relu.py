"""Generate docs/studies/noisy-relu.md (the study) and noisy-relu-report.md (`actlab report`)
through the client, from a running actlab.

    actlab up &                                   # or any server: ACTLAB_URL, ACTLAB_API_KEY
    python docs/studies/noisy_relu.py [--max-seeds 40] [--out docs/studies]

What it does, in order, and what was declared before any result was seen:

1. One packed sweep: NoisyReLU sigma in SIGMAS x noise schedule (constant, or cosine-annealed
   to 0 over the run) on the MNIST-1D MLP, on the pilot seeds. sigma = 0 constant is plain
   ReLU, the baseline; sigma = 0 cosine is the same unit (a check: its differences are all
   exactly 0, so it drops out of every family as `zero_variance`).
2. Once the pilot is done, the sweep's power table (GET /v1/sweeps/{id}/power) on test/acc
   for a difference of DELTA at 80% power, with alpha split over the family: every arm takes
   as many seeds as the most demanding comparison needs, at most --max-seeds; the new seeds
   are added to the same sweep (POST /v1/sweeps/{id}/seeds), so every seed stays paired.
3. The family, declared here: every noisy arm minus ReLU (FAMILY_ARMS, 10 arms) on each of
   OUTCOMES (test accuracy, the eval-mode train - test gap, the dead-unit fraction averaged
   over the two layers, and each layer's sparsity): 50 paired t-tests, Holm-corrected
   together, because the claims below combine them. `actlab report` prints its own family
   (the test/acc comparisons alone, Holm over those); the claims use the 50.

Re-running finds the sweep by name and only writes the pages.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import actlab
from actlab import report as actlab_report

SIGMAS = [0.0, 0.1, 0.2, 0.3, 0.5, 1.0]
SCHEDULES = ["constant", "cosine"]
PILOT_SEEDS = [0, 1, 2, 3, 4]
DELTA = 0.02  # the test-accuracy difference the seeds are chosen to detect (2 points)
STEPS = 8000  # MNIST-1D's reference training budget (Greydanus 2020)


def base_spec(epochs: int) -> dict[str, Any]:
    """The canonical MNIST-1D MLP, trained for `epochs`."""
    return {
        "dataset": {"name": "mnist1d"},
        "model": {"arch": "mlp", "hidden": [100, 100]},
        "activation": {"name": "noisy_relu", "params": {"sigma": 0.0}},
        "noise_schedule": {"kind": "constant", "start": 1.0, "end": 0.0, "unit": "step"},
        "optimizer": {"name": "adam", "lr": 0.01},
        # MNIST-1D's reference budget: Adam lr 1e-2, batch 100, 8,000 steps (36 a epoch on
        # the 3,600 training examples left beside the validation split); evaluated every 5th
        # epoch, and always at the end.
        "training": {"epochs": epochs, "max_steps": STEPS, "batch_size": 100, "eval_every": 5},
    }


def arm_label(sigma: float, kind: str) -> str:
    """The server's label of a grid point (core/spec/points.py writes floats as JSON)."""
    return f"activation.params.sigma={json.dumps(sigma)},noise_schedule.kind={kind}"


def arm_name(sigma: float, kind: str) -> str:
    if sigma == 0.0:
        return "ReLU" if kind == "constant" else "σ=0, cosine (= ReLU)"
    return f"σ={sigma:g}, {kind}"


BASELINE = arm_name(0.0, "constant")
SAME_AS_BASELINE = arm_name(0.0, "cosine")
FAMILY_ARMS = [arm_name(s, k) for k in SCHEDULES for s in SIGMAS if s > 0]


def sweep_body(epochs: int) -> dict[str, Any]:
    return {
        "name": f"study-noisy-relu-s{STEPS}",
        "base_spec": base_spec(epochs),
        "grid": {"activation.params.sigma": SIGMAS, "noise_schedule.kind": SCHEDULES},
        "seeds": PILOT_SEEDS,
        "baseline": {"activation.params.sigma": 0.0, "noise_schedule.kind": "constant"},
        "metric": "val/acc",  # arms are ranked on validation; test/acc is reported
        "packing": {"max_members": 12},
        "labels": {arm_label(s, k): arm_name(s, k) for s in SIGMAS for k in SCHEDULES},
        "tags": ["study"],
    }


def ensure(client: actlab.Client, epochs: int) -> str:
    """The study's sweep id, creating the sweep if it is not there yet."""
    body = sweep_body(epochs)
    for s in client.sweeps.list():
        if s.name == body["name"]:
            return s.id
    return client.sweeps.create(body).id


def seeds_for(power: actlab.models.Power, have: int, most: int) -> int:
    """Seeds per arm: what the most demanding comparison of the family needs for DELTA,
    at least what the pilot ran and at most `most`."""
    needed = [r.seeds_needed for r in power.rows if r.seeds_needed]
    return max(have, min(most, max(needed, default=have)))


def pilot_power(client: actlab.Client, sweep_id: str, out: Path) -> actlab.models.Power:
    """The power table of the pilot seeds, kept beside the study (noisy-relu-pilot.json) the
    first time, so that a re-run, when the sweep has every seed, still shows what chose them."""
    kept = out / "noisy-relu-pilot.json"
    if kept.exists():
        stored = json.loads(kept.read_text())
        if stored["sweep_id"] == sweep_id:
            return actlab.models.Power.model_validate(stored)
    power = client.sweeps.power(sweep_id, DELTA, metric="test/acc", family="baseline")
    kept.write_text(json.dumps(power.model_dump(mode="json"), indent=1) + "\n")
    return power


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=223, help="enough for --steps")
    parser.add_argument("--max-seeds", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    started = time.monotonic()
    with actlab.Client() as client:
        sweep_id = ensure(client, args.epochs)
        print("sweep:", sweep_id)
        sweep = client.sweeps.wait(sweep_id, progress=True)
        pilot = pilot_power(client, sweep_id, args.out)
        n = seeds_for(pilot, len(sweep.seeds), args.max_seeds)
        if n > len(sweep.seeds):
            first = max(sweep.seeds) + 1
            more = list(range(first, first + n - len(sweep.seeds)))
            print(f"power table: {n} seeds per arm; adding {more}")
            client.sweeps.add_seeds(sweep_id, more)
            client.sweeps.wait(sweep_id, progress=True)
        final = client.sweeps.power(sweep_id, DELTA, metric="test/acc", family="baseline")
        made = actlab_report.build(
            client, sweep_id, args.out / "noisy-relu-report.md", delta=DELTA, curve="val/acc"
        )
        actlab_report.write(made, args.out / "noisy-relu-report.md", "md")
        from report import write_study  # docs/studies/report.py, beside this script

        write_study(
            client, sweep_id, args.out, pilot=pilot, pilot_seeds=PILOT_SEEDS, final=final,
            max_seeds=args.max_seeds, waited_s=time.monotonic() - started,
        )  # fmt: skip


if __name__ == "__main__":
    main()
