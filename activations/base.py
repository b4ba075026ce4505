"""Base classes, the noise-scale convention and the paper's hard functions."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn


class Activation(nn.Module):
    """Base of every registered unit: carries the diagnostics hooks."""

    # True when the deterministic output has exact zeros worth counting (ReLU family).
    is_sparse_family: bool = False

    def saturation_mask(self, x: Tensor) -> Tensor | None:
        """Saturated inputs: a hard function's flat region, or where a smooth saturating
        unit's slope is under SATURATION_SLOPE of its maximum; None when the unit has none."""
        return None


class NoisyActivation(Activation):
    """Base of every noisy unit: effective noise level = base level x ``noise_scale``."""

    def __init__(self, generator: torch.Generator | None = None) -> None:
        super().__init__()
        # A schedule sets this every step; 0 switches the noise off.
        self.noise_scale: float = 1.0
        self.generator = generator

    # Where the unit adds its noise: "output" (y = f(x) + noise, or a random output such as
    # rrelu's: effective_noise_std is the std of what y carries), "input" (y = h(x + noise):
    # output_noise_var works out what reaches y), or None (not declared, as a plugin unit
    # may leave it: no output-side figure, rather than a wrong one).
    noise_side: str | None = None

    def effective_noise_std(self, x: Tensor) -> Tensor | float:
        """Std of the noise a training pass applies for input ``x`` at the current scale."""
        raise NotImplementedError

    def output_noise_var(self, x: Tensor) -> Tensor | float | None:
        """Var(training output | x) at the current scale: the noise the next layer sees.
        effective_noise_std² for output-side units; input-side units override it (the
        variance of h(x + noise)); None where the unit does not say where its noise is."""
        if self.noise_side != "output":
            return None
        std = self.effective_noise_std(x)
        return std * std

    def noise_on(self) -> bool:
        """Whether a forward pass draws noise (training mode and a non-zero scale)."""
        return self.training and self.noise_scale != 0.0

    def extra_repr(self) -> str:
        return f"noise_scale={self.noise_scale}"


def set_noise_scale(module: nn.Module, scale: float) -> int:
    """Set ``noise_scale`` on every NoisyActivation inside ``module``; return how many."""
    units = noisy_modules(module)
    for unit in units:
        unit.noise_scale = float(scale)
    return len(units)


def noisy_modules(module: nn.Module) -> list[NoisyActivation]:
    """Every NoisyActivation inside ``module`` (itself included), in module order."""
    return [m for m in module.modules() if isinstance(m, NoisyActivation)]


@dataclass(frozen=True)
class HardSpec:
    """A hard function h = clip(u, lo, 1) with linearisation u(x) = slope*x + offset."""

    name: str
    slope: float
    offset: float
    lo: float
    threshold: float  # |x| >= threshold is the flat (saturated) region

    def linear(self, x: Tensor) -> Tensor:
        """u(x), the first-order expansion at 0."""
        return x * self.slope + self.offset if self.offset else x * self.slope

    def hard(self, x: Tensor) -> Tensor:
        """h(x) = clip(u(x), lo, 1)."""
        return torch.clamp(self.linear(x), self.lo, 1.0)

    def saturated(self, x: Tensor) -> Tensor:
        """Bool mask of the flat region."""
        return x.abs() >= self.threshold


# Smooth saturating units have no flat region: an input counts as saturated where the slope
# is below SATURATION_SLOPE of the unit's largest slope (reached at x = 0), the same test
# that picks out a hard unit's flat region (slope 0 there). tanh' = sech^2 x with maximum 1,
# so sech^2 x < eps <=> cosh x > 1/sqrt(eps) <=> |x| > acosh(1/sqrt(eps)) (2.1783 for 0.05);
# sigmoid' = sech^2(x/2)/4 with maximum 1/4, so the same test gives twice that (4.3565).
SATURATION_SLOPE = 0.05
TANH_SATURATION = math.acosh(1.0 / math.sqrt(SATURATION_SLOPE))
SIGMOID_SATURATION = 2.0 * TANH_SATURATION


HARD_TANH = HardSpec("hard_tanh", slope=1.0, offset=0.0, lo=-1.0, threshold=1.0)
# The paper's hard sigmoid: slope 1/4, not torch's 1/6 (nn.Hardsigmoid).
HARD_SIGMOID = HardSpec("hard_sigmoid", slope=0.25, offset=0.5, lo=0.0, threshold=2.0)


def channel_view(param: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-channel vector so it broadcasts along dim 1 of ``x``."""
    if param.dim() == 0 or x.dim() < 2:
        return param
    return param.view(1, -1, *([1] * (x.dim() - 2)))


def sign(v: float) -> float:
    """sgn(v) of a Python float: -1.0, 0.0 or 1.0 (the constant sgn(1 - alpha) of the
    Gulcehre units' formulas)."""
    return float((v > 0) - (v < 0))
