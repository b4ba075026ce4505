"""Forward+backward time and saved-for-backward bytes of the noisy units vs the seed's NoisyReLU.

Run by hand: python benchmarks/bench_activations.py [--sizes 1M 16M] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

# Run as a script from anywhere: make the repo root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import activations
from activations.diagnostics import saved_bytes


class SeedNoisyReLU(nn.Module):
    """The seed's sample code (seed 000, section 4), copied verbatim as the naive baseline."""

    def __init__(self, sigma=0.1):
        super(SeedNoisyReLU, self).__init__()  # noqa: UP008 - verbatim copy
        self.sigma = sigma

    def forward(self, x):
        if self.training:  # 只在训练时添加噪声
            noise = torch.randn(x.size()) * self.sigma
            return torch.max(torch.zeros_like(x), x) + noise
        else:
            return torch.max(torch.zeros_like(x), x)


class SeedNoisyReLUOnDevice(SeedNoisyReLU):
    """The seed's code with only its device bug fixed (noise drawn on x's device): the naive
    baseline on CUDA, where the verbatim code fails."""

    def forward(self, x):
        if self.training:
            noise = torch.randn(x.size(), device=x.device) * self.sigma
            return torch.max(torch.zeros_like(x), x) + noise
        return torch.max(torch.zeros_like(x), x)


def eager_noisy_relu() -> nn.Module:
    """noisy_relu forced onto its eager (non-fused) path."""
    unit = activations.create("noisy_relu", sigma=0.1)
    unit.use_fused = False
    return unit


UNITS: list[tuple[str, Callable[[], nn.Module]]] = [
    ("seed NoisyReLU (baseline)", lambda: SeedNoisyReLU(0.1)),
    ("torch.relu", nn.ReLU),
    ("noisy_relu gaussian", lambda: activations.create("noisy_relu", sigma=0.1)),
    ("noisy_relu laplace", lambda: activations.create("noisy_relu", distribution="laplace")),
    ("noisy_relu uniform", lambda: activations.create("noisy_relu", distribution="uniform")),
    ("nrelu", lambda: activations.create("nrelu")),
    ("noisy_hard_tanh", lambda: activations.create("noisy_hard_tanh")),
    ("noisy_hard_sigmoid", lambda: activations.create("noisy_hard_sigmoid")),
    ("nani_hard_tanh", lambda: activations.create("nani_hard_tanh")),
    ("nanis_hard_tanh", lambda: activations.create("nanis_hard_tanh")),
    ("nani_hard_sigmoid", lambda: activations.create("nani_hard_sigmoid")),
    ("nanis_hard_sigmoid", lambda: activations.create("nanis_hard_sigmoid")),
    ("nani_relu", lambda: activations.create("nani_relu")),
    ("nanis_relu", lambda: activations.create("nanis_relu")),
    (
        "noisy_relu learned sigma",
        lambda: activations.create("noisy_relu", learn_sigma=True, num_channels=1),
    ),
    ("rrelu", lambda: activations.create("rrelu")),
    ("gaussian_dropout", lambda: activations.create("gaussian_dropout")),
]


def parse_size(text: str) -> int:
    """'16M' -> 16 * 2**20 elements, '4K' -> 4096, '1000' -> 1000."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    suffix = text[-1].upper()
    return int(text[:-1]) * units[suffix] if suffix in units else int(text)


def step(unit: nn.Module, x: Tensor, grad: Tensor) -> None:
    """One forward+backward pass."""
    x.grad = None
    unit(x).backward(grad)


def time_once(unit: nn.Module, x: Tensor, grad: Tensor) -> float:
    """Seconds of one forward+backward pass (NaN when the unit cannot run on x's device)."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    start = time.perf_counter()
    try:
        step(unit, x, grad)
    except RuntimeError:  # the seed's CPU noise cannot be added to a CUDA tensor
        return float("nan")
    sync()
    return time.perf_counter() - start


def time_units(units: list[nn.Module], x: Tensor, grad: Tensor, repeats: int) -> list[float]:
    """Median seconds of forward+backward per unit, after a warmup pass of each.

    The units run in interleaved rounds (one pass of each per round), so a shared machine's
    changing load hits every unit alike and the ratios stay meaningful.
    """
    for unit in units:
        time_once(unit, x, grad)
    times: list[list[float]] = [[] for _ in units]
    for _ in range(repeats):
        for unit, row in zip(units, times, strict=True):
            row.append(time_once(unit, x, grad))
    return [statistics.median(row) for row in times]


def fused_opt_in(name: str) -> Callable[[], nn.Module]:
    """A Gulcehre unit on its opt-in fused kernel."""

    def make() -> nn.Module:
        unit = activations.create(name)
        unit.use_fused = True
        return unit

    return make


CUDA_UNITS: list[tuple[str, Callable[[], nn.Module]]] = [
    ("seed NoisyReLU, noise on x's device", lambda: SeedNoisyReLUOnDevice(0.1)),
    ("noisy_relu gaussian, eager path", eager_noisy_relu),
    ("noisy_hard_tanh, fused (opt-in)", fused_opt_in("noisy_hard_tanh")),
    ("noisy_hard_sigmoid, fused (opt-in)", fused_opt_in("noisy_hard_sigmoid")),
]


def bench_size(n: int, device: str, repeats: int) -> None:
    """Print one table for ``n`` float32 elements."""
    x = torch.randn(n, device=device, requires_grad=True)
    grad = torch.ones_like(x)
    table = UNITS[:2] + CUDA_UNITS + UNITS[2:] if device == "cuda" else UNITS
    units = [make().to(device).train() for _, make in table]
    secs = time_units(units, x, grad, repeats)
    rows = []
    for (label, _), unit, t in zip(table, units, secs, strict=True):
        try:
            per_el = saved_bytes(unit, x) / n
        except RuntimeError as err:  # the seed's CPU noise cannot be added to a CUDA tensor
            per_el = float("nan")
            print(f"  {label}: failed ({str(err).splitlines()[0][:60]})")
        rows.append((label, t, per_el))
    base, relu = rows[0][1], rows[1][1]
    print(
        f"\n{n:,} float32 elements on {device} ({torch.get_num_threads()} threads, "
        f"median of {repeats} interleaved rounds)"
    )
    print(f"{'unit':<36}{'fwd+bwd ms':>11}{'vs seed':>9}{'vs relu':>9}{'saved B/el':>11}")
    for label, secs, per_el in rows:
        vs_seed = base / secs if base == base else float("nan")
        print(f"{label:<36}{secs * 1e3:>11.3f}{vs_seed:>8.2f}x{secs / relu:>8.2f}x{per_el:>11.2f}")
    if device == "cuda":
        bandwidth_table(x, grad, repeats)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median milliseconds of ``fn`` on CUDA (events), after a warmup call."""
    fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def bandwidth_table(x: Tensor, grad: Tensor, repeats: int) -> None:
    """The fused kernel's forward and backward as a fraction of the device's copy bandwidth.

    Bytes counted are those each pass must move: forward reads x and writes y and the
    1-byte mask (9 B/element in float32); backward reads grad and the mask and writes
    grad_x (9 B/element); a copy reads and writes 8 B/element.
    """
    from activations import fused

    n, size = x.numel(), x.element_size()
    data = x.detach()
    out = torch.empty_like(data)
    copy_ms = median_ms(lambda: out.copy_(data), repeats)
    _, mask = fused.noisy_relu_forward(data, 0.1, "gaussian", None)
    fwd_ms = median_ms(lambda: fused.noisy_relu_forward(data, 0.1, "gaussian", None), repeats)
    bwd_ms = median_ms(lambda: fused.masked_grad(grad, mask), repeats)
    copy_bw = 2 * size * n / copy_ms / 1e6  # GB/s
    print(f"{'pass':<36}{'ms':>11}{'GB/s':>9}{'of copy':>9}")
    print(f"{'copy (x -> y)':<36}{copy_ms:>11.3f}{copy_bw:>9.0f}{1:>8.2f}x")
    for label, ms, moved in (
        ("fused forward", fwd_ms, 2 * size + 1),
        ("fused backward", bwd_ms, 2 * size + 1),
    ):
        bw = moved * n / ms / 1e6
        print(f"{label:<36}{ms:>11.3f}{bw:>9.0f}{bw / copy_bw:>8.2f}x")


def main() -> None:
    """Parse arguments and run every size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["1M", "16M"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--only", nargs="+", default=None, help="time only units whose label contains one of these"
    )
    args = parser.parse_args()
    if args.only:  # the first two rows (the seed code and relu) are the baselines: always kept
        keep = [u for u in UNITS[2:] if any(w in u[0] for w in args.only)]
        UNITS[2:] = keep
    print("'vs seed' = seed time / unit time (higher is faster); 'vs relu' = unit / relu time")
    for size in args.sizes:
        bench_size(parse_size(size), args.device, args.repeats)


if __name__ == "__main__":
    main()
