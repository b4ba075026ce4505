"""Small helpers shared by the activations tests."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call


def gradcheck_unit(unit: nn.Module, x: Tensor, seed: int = 0) -> bool:
    """gradcheck in float64 wrt x and every parameter, the noise re-seeded per call."""
    unit = unit.double()
    gen = getattr(unit, "generator", None)
    names = [n for n, _ in unit.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for _, p in unit.named_parameters())

    def fn(xx: Tensor, *ps: Tensor) -> Tensor:
        if gen is not None:
            gen.manual_seed(seed)
        return functional_call(unit, dict(zip(names, ps, strict=True)), (xx,))

    inputs = (x.double().requires_grad_(True), *params)
    return torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def lag1_corr(v: Tensor) -> float:
    """Correlation between neighbouring elements of a flat tensor."""
    v = v.flatten().double()
    a, b = v[:-1] - v[:-1].mean(), v[1:] - v[1:].mean()
    return float((a * b).mean() / (a.std() * b.std()))


def away_from(x: Tensor, kinks: tuple[float, ...], gap: float = 0.05) -> Tensor:
    """Nudge entries of ``x`` that lie within ``gap`` of a kink, for finite differences."""
    for k in kinks:
        near = (x - k).abs() < gap
        x = torch.where(near, x + 2 * gap, x)
    return x
