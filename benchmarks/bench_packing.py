"""Packed training against the same experiments trained one after another by the engine.

Run by hand: `python benchmarks/bench_packing.py [--ks 1 4 16 64] [--steps 8000]`.

Workload (issue 17): MNIST-1D MLP [100, 100], NoisyReLU with sigma spread over the members
(0.05 .. 0.5), a cosine noise schedule, Adam lr 1e-2, batch 100, `--steps` steps, the
engine's default evaluation and diagnostics cadence. For each K the same K experiments run
sequentially (`engine.train`, one after another) and packed (`train_pack`), in this run, so
the speed-up is a ratio of two timings taken under the same load. `--vmap` also times one
training step of the stacked model written with batched matmuls against torch.func.vmap.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.spec import ExperimentSpec
from service.spec.experiment import CANONICAL_EXAMPLE
from worker import engine
from worker.engine.packed import PackMember, train_pack


def member_specs(k: int, steps: int, device: str) -> list[ExperimentSpec]:
    specs = []
    for i in range(k):
        raw = copy.deepcopy(CANONICAL_EXAMPLE)
        sigma = 0.05 + 0.45 * i / max(k - 1, 1)
        raw.update(seed=i, name=f"bench-{i}")
        raw["activation"] = {"name": "noisy_relu", "params": {"sigma": round(sigma, 4)}}
        raw["training"] = {
            "epochs": 100_000,
            "max_steps": steps,
            "batch_size": 100,
            "device": device,
        }
        specs.append(ExperimentSpec.model_validate(raw))
    return specs


# Wall clock by default; --cpu-time switches to process CPU time, steadier on a shared machine
# (use it with --threads 1, where CPU time is compute time).
CLOCK = time.perf_counter


def sequential(specs: list[ExperimentSpec], data_dir: Path) -> float:
    start = CLOCK()
    for spec in specs:
        engine.train(spec, callbacks=engine.Callbacks(), data_dir=data_dir)
    return CLOCK() - start


def packed(specs: list[ExperimentSpec], data_dir: Path) -> float:
    start = CLOCK()
    members = [PackMember(spec, engine.Callbacks()) for spec in specs]
    outcomes = train_pack(members, data_dir=data_dir)
    assert all(isinstance(o, engine.TrainResult) for o in outcomes), outcomes
    return CLOCK() - start


def vmap_vs_bmm(k: int, repeats: int = 200) -> tuple[float, float]:
    """Milliseconds of one forward+backward of K stacked [40-100-100-10] MLPs (ReLU)."""
    from torch import nn
    from torch.func import functional_call, stack_module_state, vmap

    nets = [
        nn.Sequential(
            nn.Linear(40, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10)
        )
        for _ in range(k)
    ]
    params, _ = stack_module_state(nets)  # type: ignore[arg-type]
    x, y = torch.randn(k, 100, 40), torch.randint(0, 10, (k, 100))
    ws = [params[f"{i}.weight"] for i in (0, 2, 4)]
    bs = [params[f"{i}.bias"] for i in (0, 2, 4)]

    def bmm_step() -> None:
        h = x
        for j, (w, b) in enumerate(zip(ws, bs, strict=True)):
            h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
            h = torch.relu(h) if j < 2 else h
        F.cross_entropy(h.flatten(0, 1), y.flatten()).backward()

    base = copy.deepcopy(nets[0]).to("meta")

    def one(p: dict, xb: torch.Tensor) -> torch.Tensor:
        return functional_call(base, p, (xb,))

    def vmap_step() -> None:
        out = vmap(one)(params, x)
        F.cross_entropy(out.flatten(0, 1), y.flatten()).backward()

    return _ms(bmm_step, repeats), _ms(vmap_step, repeats)


def _ms(fn, repeats: int) -> float:
    for _ in range(10):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--vmap", action="store_true", help="also time bmm against vmap")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--cpu-time", action="store_true", help="process CPU time, not wall")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cpu_time:
        global CLOCK
        CLOCK = time.process_time
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        packed(member_specs(2, 10, args.device), data_dir)  # generate the data set once
        clock = "CPU" if args.cpu_time else "wall"
        threads = torch.get_num_threads()
        print(f"{args.steps} steps, device {args.device}, torch threads {threads}, {clock} time")
        print("| K | sequential s | packed s | member-steps/s, seq | packed | speed-up |")
        print("| --- | --- | --- | --- | --- | --- |")
        for k in args.ks:
            specs = member_specs(k, args.steps, args.device)
            seq, pack = sequential(specs, data_dir), packed(specs, data_dir)
            rate_seq, rate_pack = k * args.steps / seq, k * args.steps / pack
            row = (k, f"{seq:.1f}", f"{pack:.1f}", f"{rate_seq:.0f}", f"{rate_pack:.0f}")
            print("| " + " | ".join(map(str, row)) + f" | {seq / pack:.2f}x |", flush=True)
    if args.vmap:
        print("\n| K | bmm ms/step | vmap ms/step | vmap / bmm |\n| --- | --- | --- | --- |")
        for k in args.ks:
            bmm, vm = vmap_vs_bmm(k)
            print(f"| {k} | {bmm:.3f} | {vm:.3f} | {vm / bmm:.2f} |", flush=True)


if __name__ == "__main__":
    main()
