"""Train the reference experiments with the engine directly on a device (run by hand).

    python benchmarks/train_on_device.py [--device cuda] [--only mlp,cnn] [--variants fp32,bf16]

The HTTP-level reproduction is `reproduce_published.py`; this script skips the API and the
queue to check the engine's device paths on a GPU box: the reference runs (MNIST-1D MLP and
1-D CNN, digits, the GRU with noisy gates on the adding problem, and the canonical NoisyReLU
spec, whose noise goes through the fused kernel on CUDA) under fp32, bf16 autocast and
torch.compile, plus two checks: the same spec twice gives identical metrics, and a run
interrupted after a checkpoint and resumed ends with the metrics of an uninterrupted run.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from reproduce_published import RUNS

from core.spec import ExperimentSpec
from core.spec.experiment import CANONICAL_EXAMPLE
from worker import engine

VARIANTS = {"fp32": {}, "bf16": {"precision": "bf16"}, "compile": {"compile": True}}


class Recorder(engine.Callbacks):
    """Keeps every metric; optionally asks to stop once `stop_at` steps have run."""

    poll_interval_s = 0.0

    def __init__(self, stop_at: int | None = None) -> None:
        self.points: dict[tuple[str, int], float] = {}
        self.stop_at, self.step, self.steps, self.t0 = stop_at, 0, 0, 0.0

    def on_start(self, *, total_steps: int, total_epochs: int, resumed_from_step: int) -> None:
        self.steps, self.t0 = total_steps - resumed_from_step, time.perf_counter()

    def on_progress(self, *, epoch: int, step: int, total_steps: int) -> None:
        self.step = step

    def on_metrics(self, *, step: int, epoch: int, values: dict[str, float]) -> None:
        self.step = step
        self.points.update({(name, step): v for name, v in values.items()})

    def should_stop(self) -> str | None:
        return "bench" if self.stop_at is not None and self.step >= self.stop_at else None


def spec_of(raw: dict[str, Any], device: str, **training: Any) -> ExperimentSpec:
    raw = copy.deepcopy(raw)
    raw.setdefault("name", "device-check")
    raw["training"] = {**raw.get("training", {}), "device": device, **training}
    return ExperimentSpec.model_validate(raw)


def run(spec: ExperimentSpec, data_dir: Path, ckpt: Path | None = None, stop_at: int | None = None):
    rec = Recorder(stop_at)
    start = time.perf_counter()
    try:
        result = engine.train(spec, callbacks=rec, data_dir=data_dir, checkpoint_path=ckpt)
    except engine.Interrupted:
        return rec, None, time.perf_counter() - start
    return rec, result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", default="mlp,cnn,digits,gru-adding,canonical")
    parser.add_argument("--variants", default="fp32,bf16,compile")
    args = parser.parse_args()
    runs = {name: (spec, metric) for name, (spec, metric, _) in RUNS.items()}
    runs["canonical"] = ({k: v for k, v in CANONICAL_EXAMPLE.items()}, "test/acc")
    name_of = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"device {args.device} ({name_of}), torch {torch.__version__}")
    header = f"{'run':<12}{'variant':<9}{'metric':<10}{'final':>8}{'steps':>7}{'steps/s':>9}"
    print(f"{header}{'wall s':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        for name in args.only.split(","):
            raw, metric = runs[name]
            for variant in args.variants.split(","):
                spec = spec_of(raw, args.device, **VARIANTS[variant])
                rec, result, wall = run(spec, data_dir)
                assert result is not None
                rate = rec.steps / (time.perf_counter() - rec.t0)
                print(
                    f"{name:<12}{variant:<9}{metric:<10}{result.summary[metric]:>8.4f}"
                    f"{result.steps:>7}{rate:>9.0f}{wall:>8.1f}"
                )
        check_determinism_and_resume(data_dir, args.device)


def check_determinism_and_resume(data_dir: Path, device: str) -> None:
    """Same spec twice, and interrupted + resumed, against one uninterrupted run."""
    spec = spec_of(CANONICAL_EXAMPLE, device, epochs=6, checkpoint_interval_s=0)
    first, _, _ = run(spec, data_dir)
    second, _, _ = run(spec, data_dir)
    ckpt = data_dir / "resume.pt"
    head, _, _ = run(spec, data_dir, ckpt, stop_at=100)
    tail, _, _ = run(spec, data_dir, ckpt)
    resumed = {**head.points, **tail.points}
    same = first.points == second.points
    print(f"determinism on {device}: two runs identical = {same} ({len(first.points)} points)")
    diff = max(abs(first.points[k] - resumed[k]) for k in first.points)
    print(
        f"resume on {device}: stopped at step {head.step}, resumed to the end; "
        f"identical = {resumed == first.points}, max |difference| = {diff:.3g}"
    )


if __name__ == "__main__":
    main()
