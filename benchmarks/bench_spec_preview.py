"""CPU time of POST /v1/experiments/preview's work (limits check, horizon, both series).

Run by hand: python benchmarks/bench_spec_preview.py [--repeats 5]
Measures process CPU time (robust on a shared box) of `service.experiments.preview.build`
for runs of 720, 20,000 and 300,000 steps (the last is evaluated at 200,000 sampled steps),
with and without max_points=400 (what the dashboard asks for).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.settings import Settings
from core.spec import ExperimentSpec
from core.spec.experiment import CANONICAL_EXAMPLE
from service.experiments.preview import PreviewSteps, build


def spec(max_steps: int | None) -> ExperimentSpec:
    doc = copy.deepcopy(CANONICAL_EXAMPLE)
    if max_steps is not None:
        doc["training"]["max_steps"] = max_steps
    return ExperimentSpec.model_validate(doc)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    settings = Settings(data_dir=Path(tempfile.mkdtemp()))
    print("| steps | max_points | CPU ms (median) |\n| --- | --- | --- |")
    for max_steps in (None, 20_000, 300_000):
        s = spec(max_steps)
        for max_points in (None, 400):
            times = []
            for _ in range(args.repeats):
                t0 = time.process_time()
                body = build(
                    settings=settings, spec=s, steps=PreviewSteps.all, max_points=max_points
                )
                times.append(time.process_time() - t0)
            ms = statistics.median(times) * 1e3
            print(f"| {body['total_steps']} | {max_points or '-'} | {ms:.1f} |")


if __name__ == "__main__":
    main()
