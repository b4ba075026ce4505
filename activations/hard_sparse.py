"""The noisy hard units on a small CPU tensor: the paper's terms on the saturated elements only.

At a recurrent gate's size (e.g. 100 x 384 elements a time step) a unit's time is the
number of ops, not the bytes. Outside the flat region Delta = 0, so sigma = 0, phi = u and
d phi/dx = k (the slope of u) exactly, and d phi/dp = 0: only the n elements with Delta != 0
(|x| > threshold; their flat indices ``idx`` in row-major order) need the formulas of
``hard_blocks``. So phi is u with the correction alpha*Delta + d*sigma*xi added at idx, and
the gradient is k*grad with its correction added at idx; the few ops on the n gathered
elements cost little next to the full-size ones. With Delta = -k*s, s = softshrink(x),
q = sigmoid(|p|*Delta) - 1/2 and R = |q|*(1 - 4q^2)*xi (``hard_blocks`` derives them):

- phi - u = -alpha*k*s + sgn(1 - alpha)*c*q*|q|*xi,
- d phi/dx - k = -alpha*k - |p|*k*sgn(1 - alpha)*(c/2)*R  (s != 0 at idx),
- d phi/dp = sgn(1 - alpha)*sgn(p)*(c/2)*R*(-k*s).

``xi`` is given at idx only (n values). The gradient's per-unit sums for p are taken over a
dense buffer with ``blocks.row_sum``: the same bits on any thread count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from . import blocks
from .base import HardSpec
from .hard_blocks import _p_row, _sign


def saturated_index(x: Tensor, spec: HardSpec) -> Tensor:
    """Flat indices (int64, ascending) of the elements of contiguous ``x`` where Delta != 0."""
    return F.softshrink(x, spec.threshold).view(-1).nonzero().view(-1)


def _at(x: Tensor, p: Tensor, idx: Tensor) -> tuple[Tensor, Tensor, blocks.Layout]:
    """(x at idx, |p| at idx or as a scalar, the layout whose rows carry every channel once)."""
    lay = blocks.layout(x, p.numel() > 1)
    xs = x.view(-1).index_select(0, idx)
    if p.numel() == 1:
        return xs, p.reshape(()).abs(), lay
    prow = _p_row(p, x, lay).reshape(-1)
    return xs, prow.index_select(0, idx.remainder(lay.shape[1])).abs_(), lay


def _q(xs: Tensor, pa: Tensor, spec: HardSpec) -> tuple[Tensor, Tensor]:
    """(s, q) at idx: s = softshrink(x, threshold), q = sigmoid(|p|*Delta) - 1/2."""
    s = F.softshrink(xs, spec.threshold)
    return s, torch.mul(s, pa).mul_(-spec.slope).sigmoid_().sub_(0.5)


def forward(
    x: Tensor,
    u: Tensor,
    idx: Tensor,
    p: Tensor,
    spec: HardSpec,
    alpha: float,
    c: float,
    xi: Tensor,
) -> Tensor:
    """phi(x, xi): ``u`` = u(x) (overwritten and returned) corrected at ``idx``; xi at idx."""
    xs, pa, _ = _at(x, p, idx)
    s, q = _q(xs, pa, spec)
    q.mul_(q.abs())
    delta = torch.addcmul(s.mul_(-alpha * spec.slope), q, xi, value=_sign(1.0 - alpha) * c)
    return u.view(-1).index_add_(0, idx, delta).view(u.shape)


def backward(
    x: Tensor,
    idx: Tensor,
    p: Tensor,
    spec: HardSpec,
    alpha: float,
    c: float,
    xi: Tensor,
    grad: Tensor,
    need_p: bool,
) -> tuple[Tensor, Tensor | None]:
    """(dL/dx, dL/dp shaped like ``p`` or None) for upstream ``grad``; xi at idx."""
    k, coef = spec.slope, _sign(1.0 - alpha) * c / 2.0
    grad = grad.contiguous()
    grad_x = grad * k if k != 1.0 else grad.clone()
    xs, pa, lay = _at(x, p, idx)
    s, q = _q(xs, pa, spec)
    r = torch.addcmul(torch.ones((), dtype=x.dtype), q, q, value=-4.0)
    r.mul_(q.abs_()).mul_(xi)  # R
    gs = grad.view(-1).index_select(0, idx)
    local = torch.mul(pa, r).mul_(-coef * k).sub_(alpha * k)  # d phi/dx - k
    grad_x.view(-1).index_add_(0, idx, local.mul_(gs))
    if not need_p:
        return grad_x, None
    dense = torch.zeros(x.numel(), dtype=x.dtype).index_copy_(0, idx, r.mul_(gs).mul_(s))
    total = blocks.row_sum(lay.view(dense))
    if p.numel() == 1:
        grad_p = total.sum().reshape(p.shape)
    else:
        row = x[:1] if x.dim() >= 2 else x
        grad_p = total.view(row.shape).sum_to_size(p.shape)
    return grad_x, grad_p.mul_(torch.sign(p) * (-coef * k))
