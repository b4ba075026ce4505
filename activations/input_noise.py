"""Input-noise variants from the authors' code: NANI h(x + c xi) and NANIS (saturated only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from . import blocks, censored, noise
from .base import HARD_SIGMOID, HARD_TANH, HardSpec, NoisyActivation
from .params import Param
from .registry import register

_REF = "Gulcehre et al. 2016 (arXiv 1603.00391), input-noise variants of the authors' code"
_EVAL = (
    "Eval: the deterministic h(x), as the authors' code does (E[h(x + c xi)] != h(x) in general)."
)


def _relu_saturated(x: Tensor) -> Tensor:
    # For ReLU the flat ("saturated") side is x < 0.
    return x < 0


class _InputNoiseFn(torch.autograd.Function):
    """h(x + level * xi * m(x)); saves only the 1-byte mask of where h has slope.

    m(x) is piecewise constant, so d phi/dx = h'(x + noise): slope k where the noisy
    input lies in h's linear part (bounds included, as torch.clamp's gradient has them;
    for ReLU, where it is > 0), else 0. ``spec`` None means ReLU.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: Tensor,
        level: float,
        spec: HardSpec | None,
        only_saturated: bool,
        gen: torch.Generator | None,
    ) -> Tensor:
        x = x.contiguous()
        y = noise.sample("gaussian", x, gen, scale=level)
        mask = torch.empty(x.shape, dtype=torch.bool, device=x.device)
        lay = blocks.layout(x, False)
        xv, yv, mv = lay.view(x), lay.view(y), lay.view(mask)

        def block(i: int, j: int) -> None:
            xb, yb = xv[i:j], yv[i:j]
            if only_saturated:
                yb.mul_(_saturated(xb, spec))  # a 1.0/0.0 float mask
            _apply_hard(yb.add_(xb), spec, mv[i:j])

        blocks.run(block, lay)
        ctx.save_for_backward(mask)
        ctx.slope = spec.slope if spec is not None else 1.0  # type: ignore[attr-defined]
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None, None]:
        (mask,) = ctx.saved_tensors
        grad_x = grad * mask
        return grad_x.mul_(ctx.slope) if ctx.slope != 1.0 else grad_x, None, None, None, None


def _saturated(xb: Tensor, spec: HardSpec | None) -> Tensor:
    """m(x) as 1.0/0.0 of x's dtype (float math beats a bool mask): a hard function's flat
    region |x| >= threshold, or ReLU's x < 0."""
    if spec is None:
        return torch.lt(xb, 0.0, out=torch.empty_like(xb))
    flat = xb.abs()
    return torch.ge(flat, spec.threshold, out=flat)


def _apply_hard(pre: Tensor, spec: HardSpec | None, mask: Tensor) -> None:
    """h(pre) in place, and into ``mask`` where h has slope."""
    if spec is None:
        torch.gt(pre, 0, out=mask)
        pre.clamp_(min=0)
        return
    if spec.slope != 1.0 or spec.offset != 0.0:
        pre.mul_(spec.slope).add_(spec.offset)
    torch.logical_and(pre >= spec.lo, pre <= 1.0, out=mask)
    pre.clamp_(spec.lo, 1.0)


class _InputNoise(NoisyActivation):
    """phi = h(x + c * noise_scale * xi * m(x)), xi ~ N(0, 1), m = 1 (NANI) or saturated (NANIS)."""

    hard: Callable[[Tensor], Tensor]
    saturated: Callable[[Tensor], Tensor]
    spec: HardSpec | None = None  # None: ReLU
    only_saturated = False
    noise_side = "input"

    def __init__(self, c: float, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        self.c = c

    def forward(self, x: Tensor) -> Tensor:
        level = self.c * self.noise_scale
        if not self.noise_on() or level == 0.0:
            return type(self).hard(x)
        return _InputNoiseFn.apply(x, level, self.spec, self.only_saturated, self.generator)

    def effective_noise_std(self, x: Tensor) -> Tensor | float:
        """Std of the noise added to the *input* (the unit's noise is input-side)."""
        level = self.c * self.noise_scale
        if not self.only_saturated:
            return level
        return type(self).saturated(x.detach()).to(x.dtype) * level

    def output_noise_var(self, x: Tensor) -> Tensor:
        """Var(h(x + n) | x), n ~ N(0, effective_noise_std(x)²): the variance of a clipped
        Gaussian (activations.censored), float64; 0 where the unit adds no noise."""
        std = torch.as_tensor(self.effective_noise_std(x), dtype=torch.float64, device=x.device)
        return censored.hard_output_var(self.spec, x, std.square())


def _define(name: str, spec: HardSpec | None, *, only_saturated: bool) -> type[_InputNoise]:
    """Build and register one input-noise class (six near-identical classes otherwise)."""
    hard = spec.hard if spec is not None else torch.relu
    saturated = spec.saturated if spec is not None else _relu_saturated
    flat = spec is not None
    c = 0.25 if only_saturated else 0.05
    where = "only where x is saturated" if only_saturated else "everywhere"
    base = name.split("_", 1)[1]

    def __init__(self: _InputNoise, c: float = c, generator: torch.Generator | None = None) -> None:
        _InputNoise.__init__(self, c, generator)

    def saturation_mask(self: _InputNoise, x: Tensor) -> Tensor | None:
        return saturated(x) if flat else None

    attrs = {
        "__init__": __init__,
        "__doc__": f"{name}: {base}(x + c xi), noise {where}.",
        "hard": staticmethod(hard),
        "saturated": staticmethod(saturated),
        "spec": spec,
        "only_saturated": only_saturated,
        "is_sparse_family": base == "relu",
        "saturation_mask": saturation_mask,
    }
    cls = type("".join(w.capitalize() for w in name.split("_")), (_InputNoise,), attrs)
    return register(
        name,
        description=f"Train: {base}(x + c*noise_scale*xi), xi ~ N(0,1) {where}. {_EVAL}",
        reference=_REF,
        params=(Param("c", "float", c, 0.0, 100.0, description="input noise std"),),
        noisy=True,
    )(cls)


NaniHardTanh = _define("nani_hard_tanh", HARD_TANH, only_saturated=False)
NaniHardSigmoid = _define("nani_hard_sigmoid", HARD_SIGMOID, only_saturated=False)
NaniReLU = _define("nani_relu", None, only_saturated=False)
NanisHardTanh = _define("nanis_hard_tanh", HARD_TANH, only_saturated=True)
NanisHardSigmoid = _define("nanis_hard_sigmoid", HARD_SIGMOID, only_saturated=True)
NanisReLU = _define("nanis_relu", None, only_saturated=True)
