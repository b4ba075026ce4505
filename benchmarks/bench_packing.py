"""Packed training against the same experiments trained one after another by the engine.

Run by hand: `python benchmarks/bench_packing.py [--ks 1 4 16 64] [--steps 8000]
[--seq-members 16] [--threads 1]`; a quick run: `--steps 500` (about 2 minutes on 2 cores).

Workload (issue 17): MNIST-1D MLP [100, 100], NoisyReLU with sigma spread over the members
(0.05 .. 0.5), a cosine noise schedule, Adam lr 1e-2, batch 100, `--steps` steps, the
engine's default evaluation and diagnostics cadence. For each K the same K experiments run
sequentially (`engine.train`, one after another: the engine that trains unpacked
experiments) and packed (`train_pack`), in this run, so the speed-up is a ratio of two
timings taken under the same load. Both wall and process CPU time are taken for each leg.

`--seq-members N` trains only N of the K experiments sequentially (evenly spread over the
sigma range) when K > N, and scales their time by K / N: the experiments are independent and
alike in cost, so this estimates the full sequential leg; such rows are marked `est.`.
`--vmap` also times one training step of the stacked model with batched matmuls against
torch.func.vmap.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.spec import ExperimentSpec
from core.spec.experiment import CANONICAL_EXAMPLE
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


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clocks()
    return wall - start[0], cpu - start[1]


def sequential(specs: list[ExperimentSpec], data_dir: Path) -> tuple[float, float]:
    """(wall s, CPU s) of training `specs` one after another with the engine."""
    start = _clocks()
    for spec in specs:
        engine.train(spec, callbacks=engine.Callbacks(), data_dir=data_dir)
    return _since(start)


def packed(specs: list[ExperimentSpec], data_dir: Path) -> tuple[float, float]:
    """(wall s, CPU s) of training `specs` as one pack."""
    start = _clocks()
    members = [PackMember(spec, engine.Callbacks()) for spec in specs]
    outcomes = train_pack(members, data_dir=data_dir)
    assert all(isinstance(o, engine.TrainResult) for o in outcomes), outcomes
    return _since(start)


def subset(specs: list[ExperimentSpec], n: int) -> list[ExperimentSpec]:
    """`n` of `specs`, evenly spread (so over the whole sigma range)."""
    if n >= len(specs):
        return specs
    return [specs[round(i * (len(specs) - 1) / max(n - 1, 1))] for i in range(n)]


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
    parser.add_argument("--seq-members", type=int, default=None, help="cap the sequential leg")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--vmap", action="store_true", help="also time bmm against vmap")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        # Generate the data set, and pay each leg's one-time costs (the first torch.optim
        # step imports torch._dynamo: about a second) before either is timed.
        warm = member_specs(2, 10, args.device)
        packed(warm, data_dir)
        sequential(warm[:1], data_dir)
        threads = torch.get_num_threads()
        print(f"{args.steps} steps, device {args.device}, torch threads {threads}")
        print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print(
            "| K | sequential s, wall (CPU) | packed s, wall (CPU) | member-steps/s, seq "
            "| packed | steps/s of each member, packed | speed-up, wall | speed-up, CPU |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for k in args.ks:
            specs = member_specs(k, args.steps, args.device)
            timed = subset(specs, args.seq_members or k)
            seq_wall, seq_cpu = (t * k / len(timed) for t in sequential(timed, data_dir))
            pack_wall, pack_cpu = packed(specs, data_dir)
            est = f" est. from {len(timed)}" if len(timed) < k else ""
            print(
                f"| {k} | {seq_wall:.1f} ({seq_cpu:.1f}){est} | {pack_wall:.1f} ({pack_cpu:.1f}) "
                f"| {k * args.steps / seq_wall:.0f} | {k * args.steps / pack_wall:.0f} "
                f"| {args.steps / pack_wall:.0f} | {seq_wall / pack_wall:.2f}x "
                f"| {seq_cpu / pack_cpu:.2f}x |",
                flush=True,
            )
        print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.vmap:
        print("\n| K | bmm ms/step | vmap ms/step | vmap / bmm |\n| --- | --- | --- | --- |")
        for k in args.ks:
            bmm, vm = vmap_vs_bmm(k)
            print(f"| {k} | {bmm:.3f} | {vm:.3f} | {vm / bmm:.2f} |", flush=True)


if __name__ == "__main__":
    main()
