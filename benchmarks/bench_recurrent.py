"""Training throughput of a GRU and an LSTM with the paper's noisy gates vs plain gates.

Run by hand: python benchmarks/bench_recurrent.py [--steps 30] [--repeats 5] [--seq-len 50]
[--saturation init 0.06 0.5] [--threads 1 --cpu-time]

Workload: the adding problem (Hochreiter & Schmidhuber; the engine's own generator), the
engine's own GRU/LSTM cells (zoo/models/recurrent.py), hidden 128, batch 100,
Adam lr 1e-3, MSE loss. "noisy" is Gulcehre et al.'s setting: noisy_hard_sigmoid gates
(NAH) and a noisy_hard_tanh candidate/cell nonlinearity (NAN), each with its learned p;
"plain" is sigmoid gates and tanh. Variants run in interleaved rounds (a shared machine's
load hits each alike); the table gives the median steps/s and noisy/plain in the same run.

The noisy units' cost depends on how many of their inputs are in the flat region, where
the noise is drawn. Each --saturation case is one table: "init" is the models as built
(almost nothing saturated); a number f scales every cell weight and bias of both models
alike (plain and noisy share their weights) so that a fraction f of the gates' inputs is
saturated on the first batch. Training the noisy GRU on this task (Adam 3e-3) put 5-7% of
its gate inputs in the flat region from step 200 on: 0.06 is that case, 0.5 a high one.
Every round starts from the case's weights; the fractions printed are measured on one
batch before the timed rounds and after the last one.
"""

from __future__ import annotations

import argparse
import copy
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
from zoo.datasets.synthetic import adding_problem
from zoo.models.recurrent import RecurrentNet, RNNConfig

GATES = {
    "plain": ("sigmoid", "tanh"),
    "noisy": ("noisy_hard_sigmoid", "noisy_hard_tanh"),
}
Factory = Callable[[str, int], nn.Module]
Data = tuple[torch.Tensor, torch.Tensor]
BATCH = 100
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


def steps_per_second(model: nn.Module, data: Data, steps: int) -> float:
    """Adam steps per second over ``steps`` batches of the adding problem."""
    x, y = data
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = CLOCK()
    for i in range(steps):
        lo = (i * BATCH) % (len(x) - BATCH)
        loss = F.mse_loss(model(x[lo : lo + BATCH]).squeeze(-1), y[lo : lo + BATCH])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps / (CLOCK() - start)


def saturated_fractions(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Per noisy unit role (gate, act, out): the fraction of its inputs in the flat region."""
    counts: dict[str, list[int]] = {}

    def hook(role: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...]], None]:
        def count(mod: nn.Module, inp: tuple[torch.Tensor, ...]) -> None:
            row = counts.setdefault(role, [0, 0])
            row[0] += int(mod.saturation_mask(inp[0]).sum())
            row[1] += inp[0].numel()

        return count

    handles = [
        mod.register_forward_pre_hook(hook(name.rsplit(".", 1)[-1]))
        for name, mod in model.named_modules()
        if isinstance(mod, activations.NoisyActivation)
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return {role: sat / total for role, (sat, total) in counts.items()}


def scale_cells(model: nn.Module, factor: float) -> None:
    """Multiply every cell weight and bias (not the head) by ``factor``."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("cells.") and (".x2h." in name or ".h2h." in name):
                p.mul_(factor)


def scale_for(cell: str, args: argparse.Namespace, x: torch.Tensor, target: float) -> float:
    """The factor on the cell weights that saturates ``target`` of the gates' inputs on ``x``."""
    lo, hi = 0.0, 6.0  # log2 of the factor
    for _ in range(14):
        mid = (lo + hi) / 2
        model = build(cell, "noisy", args.hidden, args.seq_len)
        scale_cells(model, 2.0**mid)
        if saturated_fractions(model, x)["gate"] < target:
            lo = mid
        else:
            hi = mid
    return 2.0 ** ((lo + hi) / 2)


def time_variants(models: dict[str, nn.Module], data: Data, args: argparse.Namespace) -> dict:
    """Median steps/s of every model, in interleaved rounds after a warm-up."""
    rates: dict[str, list[float]] = {key: [] for key in models}
    # Every round starts from the same weights, so the saturated fraction stays the case's.
    start = {key: copy.deepcopy(model.state_dict()) for key, model in models.items()}
    for model in models.values():
        steps_per_second(model, data, 2)
    for _ in range(args.repeats):
        for key, model in models.items():
            model.load_state_dict(start[key])
            rates[key].append(steps_per_second(model, data, args.steps))
    return {key: statistics.median(row) for key, row in rates.items()}


def run_case(case: str, data: Data, args: argparse.Namespace, extra: dict | None = None) -> None:
    """One table: plain and noisy GRU and LSTM (and ``extra`` {label: make}) at one case."""
    probe = data[0][:BATCH]
    models: dict[str, nn.Module] = {}
    fractions: dict[str, dict[str, float]] = {}
    for cell in ("gru", "lstm"):
        factor = 1.0 if case == "init" else scale_for(cell, args, probe, float(case))
        makers = {"plain": unit, "noisy": unit, **(extra or {})}
        for label, make in makers.items():
            model = build(
                cell, "plain" if label == "plain" else "noisy", args.hidden, args.seq_len, make
            )
            scale_cells(model, factor)
            models[f"{cell} {label}"] = model
        fractions[cell] = saturated_fractions(models[f"{cell} noisy"], probe)
    rates = time_variants(models, data, args)
    print(f"\ncase {case}: saturated fraction of the noisy units' inputs, before -> after timing")
    for cell in ("gru", "lstm"):
        after = saturated_fractions(models[f"{cell} noisy"], probe)
        row = ", ".join(f"{r} {fractions[cell][r]:.3f} -> {after[r]:.3f}" for r in after)
        print(f"  {cell:<5} {row}")
        plain = rates[f"{cell} plain"]
        print(f"  {cell:<5} {'plain sigmoid/tanh':<26} {plain:8.2f} steps/s")
        for key, rate in rates.items():
            if key.startswith(cell) and not key.endswith("plain"):
                label = key.split(" ", 1)[1]
                print(f"  {cell:<5} {label:<26} {rate:8.2f} steps/s  {rate / plain:5.2f}x plain")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="training steps per round")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--seq-len", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--cpu-time", action="store_true", help="time with process CPU time")
    parser.add_argument(
        "--saturation",
        nargs="+",
        default=["init", "0.06", "0.5"],
        help="cases: 'init' (as built) or a fraction of gate inputs to saturate",
    )
    return parser.parse_args(argv)


def main(extra: dict[str, Factory] | None = None, argv: list[str] | None = None) -> None:
    """Time every case's (cell, gates) variants in interleaved rounds and print the tables.

    ``extra`` adds noisy variants built by other factories (e.g. an older copy of the
    package, for a before/after in one run)."""
    args = parse(argv)
    global CLOCK
    CLOCK = time.process_time if args.cpu_time else time.perf_counter
    torch.set_num_threads(args.threads)
    x, y = adding_problem(2000, args.seq_len, np.random.default_rng(0))
    data = (torch.from_numpy(x), torch.from_numpy(y))
    print(
        f"adding problem, seq_len {args.seq_len}, hidden {args.hidden}, batch {BATCH}, CPU, "
        f"{args.threads} threads, median of {args.repeats} interleaved rounds of "
        f"{args.steps} steps, {'CPU' if args.cpu_time else 'wall'} time"
    )
    for case in args.saturation:
        run_case(case, data, args, extra)


if __name__ == "__main__":
    main()
