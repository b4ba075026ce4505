"""Training throughput of a GRU and an LSTM with the paper's noisy gates vs plain gates.

Run by hand: python benchmarks/bench_recurrent.py [--steps 30] [--repeats 5] [--seq-len 50]

Workload: the adding problem (Hochreiter & Schmidhuber; the engine's own generator), the
engine's own GRU/LSTM cells (worker/engine/models/recurrent.py), hidden 128, batch 100,
Adam lr 1e-3, MSE loss. "noisy" is Gulcehre et al.'s setting: noisy_hard_sigmoid gates
(NAH) and a noisy_hard_tanh candidate/cell nonlinearity (NAN), each with its learned p;
"plain" is sigmoid gates and tanh. Variants run in interleaved rounds (a shared machine's
load hits each alike); the table gives the median steps/s and noisy/plain in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import activations
from worker.engine.datasets.synthetic import adding_problem
from worker.engine.models.recurrent import RecurrentNet, RNNConfig

GATES = {
    "plain": ("sigmoid", "tanh"),
    "noisy": ("noisy_hard_sigmoid", "noisy_hard_tanh"),
}
Factory = Callable[[str, int], nn.Module]
# Wall clock by default; --cpu-time switches to process CPU time, steadier on a shared machine
# (use it with --threads 1, where CPU time is compute time).
CLOCK = time.perf_counter


def unit(name: str, width: int) -> nn.Module:
    """A registered unit; a Gulcehre unit gets one learned p per unit, as the engine builds it."""
    params = {"num_units": width} if name.startswith("noisy_hard") else {}
    return activations.create(name, **params)


def build(cell: str, gates: str, hidden: int, seq_len: int, make: Factory = unit) -> nn.Module:
    """The engine's recurrent net on the adding problem's [seq_len, 2] inputs."""
    gate, act = GATES[gates]
    cfg = RNNConfig((seq_len, 2), hidden, 1, 1, cell)
    torch.manual_seed(0)
    return RecurrentNet(cfg, lambda w: make(gate, w), lambda w: make(act, w)).train()


def steps_per_second(
    model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], steps: int
) -> float:
    """Adam steps per second over ``steps`` batches of the adding problem."""
    x, y = data
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = 100
    start = CLOCK()
    for i in range(steps):
        lo = (i * batch) % (len(x) - batch)
        loss = F.mse_loss(model(x[lo : lo + batch]).squeeze(-1), y[lo : lo + batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps / (CLOCK() - start)


def main(make: Factory = unit) -> None:
    """Parse arguments, time every (cell, gates) variant in interleaved rounds, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="training steps per round")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--seq-len", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--cpu-time", action="store_true", help="time with process CPU time")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.cpu_time else time.perf_counter
    torch.set_num_threads(args.threads)
    x, y = adding_problem(2000, args.seq_len, np.random.default_rng(0))
    data = (torch.from_numpy(x), torch.from_numpy(y))
    variants = {
        (cell, gates): build(cell, gates, args.hidden, args.seq_len, make)
        for cell in ("gru", "lstm")
        for gates in GATES
    }
    rates: dict[tuple[str, str], list[float]] = {key: [] for key in variants}
    for model in variants.values():
        steps_per_second(model, data, 2)  # warm-up
    for _ in range(args.repeats):
        for key, model in variants.items():
            rates[key].append(steps_per_second(model, data, args.steps))
    print(
        f"adding problem, seq_len {args.seq_len}, hidden {args.hidden}, batch 100, CPU, "
        f"{args.threads} threads, median of {args.repeats} interleaved rounds of "
        f"{args.steps} steps, {'CPU' if args.cpu_time else 'wall'} time"
    )
    for cell in ("gru", "lstm"):
        plain = statistics.median(rates[(cell, "plain")])
        noisy = statistics.median(rates[(cell, "noisy")])
        print(f"  {cell:<5} plain sigmoid/tanh gates   {plain:8.2f} steps/s")
        ratio = noisy / plain
        print(f"  {cell:<5} noisy hard gates (paper)   {noisy:8.2f} steps/s  {ratio:5.2f}x plain")


if __name__ == "__main__":
    main()
