"""Pure diagnostics over a pre-activation batch x of shape [batch, units...] and its unit.

A unit is a feature of a [batch, units] output and a channel (dim 1) of a
[batch, channels, positions...] one (docs/activations.md, "Diagnostics: definitions")."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .base import NoisyActivation


def sparsity(y: Tensor) -> float:
    """Fraction of outputs exactly zero (meaningful for the ReLU family, eval pass)."""
    return (y == 0).float().mean().item() if y.numel() else 0.0


def units(y: Tensor) -> Tensor:
    """y of shape [batch, units] as is, or [batch, channels, positions...] as
    [batch * positions, channels]: a unit of a conv output is a channel (a feature map),
    its samples every example at every position."""
    if y.dim() < 2:
        raise ValueError("diagnostics need y of shape [batch, units...]")
    return y if y.dim() == 2 else y.movedim(1, -1).reshape(-1, y.shape[1])


def dead_fraction(y: Tensor) -> float:
    """Fraction of units (channels for conv outputs) zero for every example and position."""
    if y.dim() < 2 or y.shape[0] == 0:
        raise ValueError("dead_fraction needs y of shape [batch, units...] with batch > 0")
    alive = (units(y) != 0).any(dim=0)
    return 1.0 - alive.float().mean().item()


def dead_position_fraction(y: Tensor) -> float:
    """Fraction of (channel, position) pairs zero for every example (what older runs'
    dead_fraction measured on conv outputs); for [batch, units] it is dead_fraction."""
    if y.dim() < 2 or y.shape[0] == 0:
        raise ValueError("dead_position_fraction needs y of shape [batch, units...], batch > 0")
    alive = (y != 0).any(dim=0)
    return 1.0 - alive.float().mean().item()


def saturation_fraction(unit: nn.Module, x: Tensor) -> float | None:
    """Fraction of inputs the unit's saturation_mask marks (a hard unit's flat region, or a
    smooth one's slope under 5% of its maximum); None when the unit does not saturate."""
    hook = getattr(unit, "saturation_mask", None)
    mask = hook(x) if hook is not None else None
    return None if mask is None else mask.float().mean().item()


@torch.no_grad()
def eval_output(unit: nn.Module, x: Tensor) -> Tensor:
    """The unit's eval-mode output on x (the signal of every SNR), as float32; the unit's
    mode is restored."""
    was = unit.training
    try:
        return unit.train(False)(x).float()
    finally:
        unit.train(was)


@torch.no_grad()
def signal_and_noise(unit: NoisyActivation, x: Tensor) -> tuple[Tensor, Tensor]:
    """The unit's eval output on x (the signal) and, element by element, the variance of
    the noise a training pass would add (effective_noise_std² at the current scale)."""
    signal = eval_output(unit, x)
    std = torch.as_tensor(unit.effective_noise_std(x), dtype=torch.float32, device=x.device)
    return signal, std.square().broadcast_to(x.shape)


@torch.no_grad()
def output_noise_var(unit: nn.Module, x: Tensor) -> Tensor | None:
    """Element by element, Var(training output | x) at the current scale (float64): the
    noise the next layer sees. For output-side units it is effective_noise_std²; for
    input-side ones (nrelu, NANI/NANIS) the variance of a clipped Gaussian. None for
    deterministic units and for noisy ones that do not declare ``noise_side``."""
    if not isinstance(unit, NoisyActivation):
        return None
    var = unit.output_noise_var(x)
    if var is None:
        return None
    return torch.as_tensor(var, dtype=torch.float64, device=x.device).broadcast_to(x.shape)


def signal_and_noise_var(unit: NoisyActivation, x: Tensor) -> tuple[Tensor, float]:
    """The unit's eval output on x (the signal) and the mean variance of its training noise."""
    signal, noise_var = signal_and_noise(unit, x)
    return signal, noise_var.mean().item()


def snr(unit: nn.Module, x: Tensor) -> float | None:
    """Pooled Var(signal) / mean Var(noise): the signal's variance over every element (all
    examples and units together), over the noise variance averaged the same way."""
    if not isinstance(unit, NoisyActivation):
        return None
    signal, noise_var = signal_and_noise_var(unit, x)
    signal_var = signal.var(unbiased=False).item()
    return float("inf") if noise_var == 0.0 else signal_var / noise_var


def median_unit_snr(signal_var: Tensor, noise_var: Tensor) -> float | None:
    """Median over units of signal_var / noise_var (one value per unit), leaving out units
    whose noise variance is 0 (a ratio without noise is not a signal-to-noise ratio); None
    when no unit is left. The median of an even count is the mean of the middle two."""
    keep = noise_var > 0
    if not bool(keep.any()):
        return None
    ratios = (signal_var[keep] / noise_var[keep]).double().sort().values
    mid = (len(ratios) - 1) / 2
    return float((ratios[math.floor(mid)] + ratios[math.ceil(mid)]) / 2)


def snr_unit_median(unit: nn.Module, x: Tensor) -> float | None:
    """Median over units (channels for conv) of each unit's Var(signal) / mean Var(noise)
    across its examples (and positions); see median_unit_snr. None for deterministic units."""
    if not isinstance(unit, NoisyActivation):
        return None
    signal, noise_var = signal_and_noise(unit, x)
    return median_unit_snr(units(signal).var(dim=0, unbiased=False), units(noise_var).mean(dim=0))


def snr_output(unit: nn.Module, x: Tensor) -> float | None:
    """snr with the output-side noise: pooled Var(signal) / mean output_noise_var (inf
    without noise); equal to snr for output-side units. None where output_noise_var is."""
    noise_var = output_noise_var(unit, x)
    if noise_var is None:
        return None
    signal_var = eval_output(unit, x).double().var(unbiased=False).item()
    mean = noise_var.mean().item()
    return float("inf") if mean == 0.0 else signal_var / mean


def snr_output_unit_median(unit: nn.Module, x: Tensor) -> float | None:
    """snr_unit_median with the output-side noise (see median_unit_snr). None where
    output_noise_var is, or where no unit has output noise."""
    noise_var = output_noise_var(unit, x)
    if noise_var is None:
        return None
    signal = units(eval_output(unit, x)).double()
    return median_unit_snr(signal.var(dim=0, unbiased=False), units(noise_var).mean(dim=0))


def saved_bytes(fn: Callable[[Tensor], Tensor], x: Tensor) -> int:
    """Bytes autograd keeps for backward while running ``fn(x)`` (a unit's memory cost)."""
    total = 0

    def pack(t: Tensor) -> Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return total
