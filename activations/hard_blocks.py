"""CPU block kernels of the noisy hard units: phi(x, xi) and its gradient, cache-resident.

The formulas of ``gulcehre._parts`` with fewer ops. With k the slope of u and
s = softshrink(x, threshold), Delta = h - u = -k*s (zero exactly in the linear regime),
and q = sigmoid(|p|*Delta) - 1/2, so that g - 1/2 = sgn(p)*q for g = sigmoid(p*Delta)
(q has Delta's sign, which is -sgn(x)):

- alpha*h + (1 - alpha)*u = u + alpha*Delta = k*(x - alpha*s) + offset,
- sigma = c*(g - 1/2)^2 = c*q^2, and -sgn(x)*q^2 = q*|q|,
  so d*sigma*xi = sgn(1 - alpha) * c * q*|q| * xi,
- dsigma/d(p*Delta) = 2c*(g - 1/2)*g*(1 - g) = sgn(p)*(c/2)*q*(1 - 4q^2),
  so dxi = d*xi*dsigma = sgn(1 - alpha)*sgn(p)*(c/2) * R, R = |q|*(1 - 4q^2)*xi,
- d phi/dx = (1 - alpha)*k + alpha*k*[s == 0] - p*k*dxi and d phi/dp = dxi*Delta.

(q is the paper's sigmoid, not tanh(|p|*Delta/2) = 2q: ATen's CPU tanh costs about six
times its sigmoid.) Each block's temporaries stay in cache (see ``blocks``); the noise
buffer is overwritten with the result, so a call allocates nothing of the input's size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from . import blocks
from .base import HardSpec, sign


def _p_row(p: Tensor, x: Tensor, lay: blocks.Layout) -> Tensor:
    """p broadcast to one row of the layout: a scalar, or [1, width] per channel."""
    if p.numel() == 1:
        return p.reshape(())
    row = x[:1] if x.dim() >= 2 else x
    return p.expand_as(row).reshape(1, lay.shape[1])


def _q(xb: Tensor, spec: HardSpec, pk: Tensor) -> tuple[Tensor, Tensor]:
    """(s, q) of a block: s = softshrink(x, threshold), q = sigmoid(|p|*Delta) - 1/2."""
    s = F.softshrink(xb, spec.threshold)
    return s, torch.mul(s, pk).sigmoid_().sub_(0.5)


def forward(x: Tensor, p: Tensor, spec: HardSpec, alpha: float, c: float, xi: Tensor) -> Tensor:
    """phi(x, xi) for contiguous CPU ``x`` and ``xi``, written into (and returning) ``xi``."""
    lay = blocks.layout(x, p.numel() > 1)
    xv, yv = lay.view(x), lay.view(xi)
    pk = _p_row(p, x, lay).abs() * -spec.slope  # |p|*Delta = pk * s
    k, coef = spec.slope, sign(1.0 - alpha) * c
    affine = k != 1.0 or spec.offset != 0.0

    def block(i: int, j: int) -> None:
        xb, yb = xv[i:j], yv[i:j]
        s, q = _q(xb, spec, pk)
        mix = torch.add(xb, s, alpha=-alpha)  # (u + alpha*Delta - offset) / k
        q.mul_(q.abs())
        torch.addcmul(mix, q, yb, value=coef / k, out=yb)
        if affine:
            yb.mul_(k).add_(spec.offset)

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
    xv, yv, gv = lay.view(x), lay.view(xi), lay.view(grad.contiguous())
    prow, k, coef = _p_row(p, x, lay), spec.slope, sign(1.0 - alpha) * c / 2.0
    pk = prow.abs() * -k
    slope_r = prow.abs() * (-coef * k)  # -p*k*dxi = slope_r * R
    one = torch.ones((), dtype=x.dtype)
    base = torch.full((), (1.0 - alpha) * k, dtype=x.dtype)

    def block(i: int, j: int) -> Tensor | None:
        xb, yb, gb = xv[i:j], yv[i:j], gv[i:j]
        s, q = _q(xb, spec, pk)
        r = torch.addcmul(one, q, q, value=-4.0).mul_(q.abs_()).mul_(yb)  # R
        part = blocks.row_sum(torch.mul(gb, r).mul_(s)) if need_p else None
        linear = torch.eq(s, 0.0, out=s)  # 1.0/0.0 in place: float math beats a bool mask
        local = torch.addcmul(base, r, slope_r).add_(linear, alpha=alpha * k)
        torch.mul(gb, local, out=yb)
        return part

    parts = blocks.run(block, lay)
    if not need_p:
        return xi, None
    sums = [q for q in parts if q is not None]
    # d phi/dp = dxi*Delta = sgn(1 - alpha)*sgn(p)*(c/2)*R*(-k*s).
    return xi, sum_parts(sums, x, p).mul_(torch.sign(p) * (-coef * k))


def sum_parts(parts: list[Tensor], x: Tensor, p: Tensor) -> Tensor:
    """The per-block partial sums of sum(grad*R*s), added in block order, summed to p's shape
    (the native kernels' per-span sums too: the order, not the thread count, sets the bits)."""
    if not parts:  # an empty x
        return torch.zeros_like(p)
    total = torch.zeros_like(parts[0])
    for part in parts:
        total.add_(part)
    if p.numel() == 1:
        return total.sum().reshape(p.shape)
    row = x[:1] if x.dim() >= 2 else x
    return total.view(row.shape).sum_to_size(p.shape)
