"""Engine throughput against a bare PyTorch loop, and the cost of diagnostics and checkpoints.

Run by hand: `python benchmarks/bench_engine.py [--epochs 100] [--repeats 3]`.

Workload: the MNIST-1D reference (MLP [100, 100], ReLU, Adam lr 1e-2, batch 100). The bare
loop trains the very same model on the same tensors (index slicing of a permutation, no
evaluation); the engine runs with its default cadences (evaluation of val, test and the
first `train_eval_size` training examples every epoch, diagnostics every fifth
evaluation). Ratios are of training steps per second.
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
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.spec import ExperimentSpec
from core.spec.experiment import CANONICAL_EXAMPLE
from worker import engine
from worker.engine.setup import load_data
from zoo.models import build_model

# Wall clock by default; --cpu-time switches to process CPU time, steadier on a shared machine
# (use it with --threads 1, where CPU time is compute time).
CLOCK = time.perf_counter


def make_spec(epochs: int, **training: object) -> ExperimentSpec:
    raw = copy.deepcopy(CANONICAL_EXAMPLE)
    raw["activation"] = {"name": "relu"}
    raw["training"] = {"epochs": epochs, "batch_size": 100, "device": "cpu", **training}
    return ExperimentSpec.model_validate(raw)


def bare_loop(spec: ExperimentSpec, data_dir: Path, evaluate: bool = False) -> float:
    """Steps per second of the plainest loop on the engine's own model and data; with
    `evaluate`, plus the train-subset, val and test loss/accuracy pass the engine makes
    every epoch."""
    data = load_data(spec, data_dir, torch.device("cpu"))
    torch.manual_seed(spec.seed)
    model = build_model(spec, data.info)
    opt = torch.optim.Adam(model.parameters(), lr=spec.optimizer.lr)
    x, y = data.tensors["train"]
    bs, n, steps = spec.training.batch_size, len(x), 0
    start = CLOCK()
    for _ in range(spec.training.epochs):
        perm = torch.randperm(n)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
        if evaluate:
            _bare_eval(model, data.tensors, spec.training)
    return steps / (CLOCK() - start)


def _bare_eval(model: torch.nn.Module, tensors: dict, training: Any) -> None:
    batch_size, subset = training.eval_batch_size, training.train_eval_size
    model.eval()
    with torch.inference_mode():
        for split in ("train", "val", "test"):
            x, y = tensors[split]
            if split == "train":
                x, y = x[:subset], y[:subset]
            loss, hits = 0.0, 0
            for i in range(0, len(x), batch_size):
                out = model(x[i : i + batch_size])
                loss += F.cross_entropy(out, y[i : i + batch_size]).item() * len(out)
                hits += int((out.argmax(1) == y[i : i + batch_size]).sum())
    model.train()


class _Clock(engine.Callbacks):
    """Starts the clock once data and model are built, so both sides time training only."""

    def on_start(self, *, total_steps: int, total_epochs: int, resumed_from_step: int) -> None:
        self.steps, self.t0 = total_steps, CLOCK()


def engine_loop(spec: ExperimentSpec, data_dir: Path, checkpoint: Path | None = None) -> float:
    clock = _Clock()
    if checkpoint is not None and checkpoint.exists():
        checkpoint.unlink()
    engine.train(spec, callbacks=clock, data_dir=data_dir, checkpoint_path=checkpoint)
    return clock.steps / (CLOCK() - clock.t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--cpu-time", action="store_true", help="time with process CPU time")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.cpu_time else time.perf_counter
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, ckpt = Path(tmp), Path(tmp) / "bench.pt"
        spec = make_spec(args.epochs)
        variants = {
            "bare PyTorch loop": lambda: bare_loop(spec, data_dir),
            "bare PyTorch loop + train-subset/val/test eval every epoch": lambda: bare_loop(
                spec, data_dir, evaluate=True
            ),
            "engine, defaults (eval every epoch, diagnostics every 5th)": lambda: engine_loop(
                spec, data_dir
            ),
            "engine, diagnostics every epoch": lambda: engine_loop(
                make_spec(args.epochs, diagnostics_every=1), data_dir
            ),
            "engine, diagnostics off": lambda: engine_loop(
                make_spec(args.epochs, diagnostics_every=0), data_dir
            ),
            "engine, no train-subset eval (train_eval_size 0)": lambda: engine_loop(
                make_spec(args.epochs, train_eval_size=0), data_dir
            ),
            "engine, as a worker runs it (checkpoints <= every 30 s)": lambda: engine_loop(
                spec, data_dir, ckpt
            ),
            "engine, checkpoint every epoch": lambda: engine_loop(
                make_spec(args.epochs, checkpoint_interval_s=0), data_dir, ckpt
            ),
        }
        engine_loop(make_spec(1), data_dir)  # warm-up: data cache, allocator, kernels
        # Interleaved rounds, best of each: a shared machine's load hits every variant alike.
        rows = dict.fromkeys(variants, 0.0)
        for _ in range(args.repeats):
            for name, fn in variants.items():
                rows[name] = max(rows[name], fn())
    bare = rows["bare PyTorch loop"]
    print(
        f"MNIST-1D MLP [100,100] relu, Adam 1e-2, batch 100, {args.epochs} epochs "
        f"({36 * args.epochs} steps), CPU, {args.threads} threads, best of {args.repeats} "
        f"interleaved rounds, {'CPU' if args.cpu_time else 'wall'} time"
    )
    for name, rate in rows.items():
        print(f"  {name:<58} {rate:7.0f} steps/s  {rate / bare:5.2f}x bare")
    bare_eval = rows["bare PyTorch loop + train-subset/val/test eval every epoch"]
    diag_on = rows["engine, defaults (eval every epoch, diagnostics every 5th)"]
    print(f"  engine (defaults) vs bare loop with the same evaluation: {diag_on / bare_eval:.2f}x")
    no_subset = rows["engine, no train-subset eval (train_eval_size 0)"]
    print(f"  train-subset eval (throughput with/without): {diag_on / no_subset:.3f}")
    diag_off = rows["engine, diagnostics off"]
    diag_all = rows["engine, diagnostics every epoch"]
    print(
        f"  diagnostics overhead (throughput on/off): default cadence {diag_on / diag_off:.3f}, "
        f"every epoch {diag_all / diag_off:.3f}"
    )


if __name__ == "__main__":
    main()
