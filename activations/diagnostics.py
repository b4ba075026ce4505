"""Pure diagnostics over a pre-activation batch x of shape [batch, units...] and its unit."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .base import NoisyActivation


def sparsity(y: Tensor) -> float:
    """Fraction of outputs exactly zero (meaningful for the ReLU family, eval pass)."""
    return (y == 0).float().mean().item() if y.numel() else 0.0


def dead_fraction(y: Tensor) -> float:
    """Fraction of units (all dims but 0) that are zero for every example in the batch."""
    if y.dim() < 2 or y.shape[0] == 0:
        raise ValueError("dead_fraction needs y of shape [batch, units...] with batch > 0")
    alive = (y != 0).any(dim=0)
    return 1.0 - alive.float().mean().item()


def saturation_fraction(unit: nn.Module, x: Tensor) -> float | None:
    """Fraction of inputs in the unit's flat region; None when the unit has no flat region."""
    hook = getattr(unit, "saturation_mask", None)
    mask = hook(x) if hook is not None else None
    return None if mask is None else mask.float().mean().item()


@torch.no_grad()
def signal_and_noise_var(unit: NoisyActivation, x: Tensor) -> tuple[Tensor, float]:
    """The unit's eval output on x (the signal) and the mean variance of its training noise."""
    was = unit.training
    try:
        signal = unit.train(False)(x).float()
    finally:
        unit.train(was)
    std = unit.effective_noise_std(x)
    return signal, torch.as_tensor(std, dtype=torch.float32).square().mean().item()


def snr(unit: nn.Module, x: Tensor) -> float | None:
    """Var(signal) / Var(noise): signal = the eval output, noise from effective_noise_std."""
    if not isinstance(unit, NoisyActivation):
        return None
    signal, noise_var = signal_and_noise_var(unit, x)
    signal_var = signal.var(unbiased=False).item()
    return float("inf") if noise_var == 0.0 else signal_var / noise_var


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
