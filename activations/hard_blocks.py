"""CPU block kernels of the noisy hard units: phi(x, xi) and its gradient, cache-resident.

The formulas are those of ``gulcehre._parts`` rewritten with fewer ops, using
Delta = h - u (zero in the linear regime), so that

- alpha*h + (1 - alpha)*u = u + alpha*Delta,
- d*sigma*xi = -sgn(1 - alpha) * c * sgn(x) * (g - 1/2)^2 * xi, g = sigmoid(p*Delta),
- dsigma/d(p*Delta) = 2c * (g - 1/2) * g * (1 - g) = 2c * t * (1/4 - t^2), t = g - 1/2,
- the linear regime (slope alpha*k + (1 - alpha)*k) is exactly where Delta == 0.

Each block's temporaries stay in cache (see ``blocks``); the noise buffer is overwritten
with the result, so a call allocates nothing of the input's size.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import blocks
from .base import HardSpec


def _sign(v: float) -> float:
    return float((v > 0) - (v < 0))


def _linear(xb: Tensor, spec: HardSpec) -> Tensor:
    """u(x) of a block; hard tanh's u = x is the block itself (no copy)."""
    return xb if spec.slope == 1.0 and spec.offset == 0.0 else spec.linear(xb)


def _p_row(p: Tensor, x: Tensor, lay: blocks.Layout) -> Tensor:
    """p broadcast to one row of the layout: a scalar, or [1, width] per channel."""
    if p.numel() == 1:
        return p.reshape(())
    row = x[:1] if x.dim() >= 2 else x
    return p.expand_as(row).reshape(1, lay.shape[1])


def forward(x: Tensor, p: Tensor, spec: HardSpec, alpha: float, c: float, xi: Tensor) -> Tensor:
    """phi(x, xi) for contiguous CPU ``x`` and ``xi``, written into (and returning) ``xi``."""
    lay = blocks.layout(x, p.numel() > 1)
    xv, yv, pb = lay.view(x), lay.view(xi), _p_row(p, x, lay)
    noise_coef = -_sign(1.0 - alpha) * c

    def block(i: int, j: int) -> None:
        xb, yb = xv[i:j], yv[i:j]
        u = _linear(xb, spec)
        delta = torch.clamp(u, spec.lo, 1.0).sub_(u)
        mix = torch.add(u, delta, alpha=alpha)
        w = torch.mul(delta, pb).sigmoid_().sub_(0.5).square_().mul_(torch.sign(xb))
        torch.addcmul(mix, w, yb, value=noise_coef, out=yb)

    blocks.run(block, lay)
    return xi


def backward(
    x: Tensor,
    p: Tensor,
    spec: HardSpec,
    alpha: float,
    c: float,
    xi: Tensor,
    grad: Tensor,
    need_p: bool,
) -> tuple[Tensor, Tensor | None]:
    """(dL/dx written into ``xi``, dL/dp shaped like ``p`` or None) for upstream ``grad``."""
    lay = blocks.layout(x, p.numel() > 1)
    xv, yv, gv, pb = lay.view(x), lay.view(xi), lay.view(grad.contiguous()), _p_row(p, x, lay)
    k = spec.slope
    # dxi = d * xi * dsigma = scale * r, r = sgn(x) * xi * t * (1/4 - t^2).
    scale = -2.0 * c * _sign(1.0 - alpha)
    quarter = torch.tensor(0.25, dtype=x.dtype)

    def block(i: int, j: int) -> Tensor | None:
        xb, yb, gb = xv[i:j], yv[i:j], gv[i:j]
        u = _linear(xb, spec)
        delta = torch.clamp(u, spec.lo, 1.0).sub_(u)
        t = torch.mul(delta, pb).sigmoid_().sub_(0.5)
        r = torch.addcmul(quarter, t, t, value=-1.0).mul_(t).mul_(torch.sign(xb)).mul_(yb)
        part = torch.mul(gb, r).mul_(delta).sum(0) if need_p else None
        # local slope: (1 - alpha)*k + alpha*k*[Delta == 0] - p*k*dxi
        local = torch.mul(r, pb).mul_(-scale * k).add_(delta == 0, alpha=alpha * k)
        torch.mul(gb, local.add_((1.0 - alpha) * k), out=yb)
        return part

    parts = blocks.run(block, lay)
    if not need_p:
        return xi, None
    return xi, _sum_p(parts, x, p).mul_(scale)


def _sum_p(parts: list[Tensor | None], x: Tensor, p: Tensor) -> Tensor:
    """The per-block partial sums of dL/dp, added in block order, summed to p's shape."""
    if not parts:  # an empty x
        return torch.zeros_like(p)
    total = torch.zeros_like(parts[0])
    for part in parts:
        total.add_(part)  # type: ignore[arg-type]
    if p.numel() == 1:
        return total.sum().reshape(p.shape)
    row = x[:1] if x.dim() >= 2 else x
    return total.view(row.shape).sum_to_size(p.shape)
