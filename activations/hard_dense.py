"""The noisy hard units on a small CPU tensor: the closed form in few ATen calls and passes.

At a recurrent gate's size (batch x k*hidden elements a time step, e.g. 100 x 256) a unit's
time is its number of ATen calls (a few microseconds each, whatever the work), its passes
over the tensor and its noise draw: a bool result of a comparison costs about four float
ops, and a normal draw of 25,600 floats about twenty. So this path runs whole-tensor ops on
the formulas of ``hard_blocks``, arranged to need few of them (with k the slope of u,
s = softshrink(x, threshold), Delta = -k*s, g = sigmoid(|p|*Delta) and q = g - 1/2):

- phi = k*(x - alpha*s) + offset + sgn(1 - alpha)*c * q*|q| * xi,
- d phi/dx = k*(1 - alpha*[s != 0]) - |p|*k*sgn(1 - alpha)*2c * r, with
  r = R/4 = |q|*xi*g*(1 - g) (``sigmoid_backward``), since 1 - 4q^2 = 4g(1 - g),
- d phi/dp = sgn(1 - alpha)*sgn(p)*2c * r*(-k*s);

grad*[s != 0] is ``softshrink_backward(grad, s, 0)``, one float op instead of a mask.

The noise is drawn as on the other CPU paths, so a seed gives the same xi on each: where
more than a quarter of the elements are saturated, one draw for the whole tensor
(``noise.sample``); where at most a quarter, the n draws of the saturated elements only, in
row-major order, placed by ``masked_scatter_`` (elsewhere sigma = 0: exact, and n draws
cost much less than a full one). Nothing saturated: phi = u and nothing is drawn.

Forward saves s in place of x (with p and xi, all that backward needs). After a full draw,
backward redraws xi from a snapshot of the generator (x's memory, as on the other paths);
after n draws, forward keeps r as well (it holds xi), and backward is a few ops with nothing
redrawn or recomputed. Every op here is elementwise or a serial reduction (the sums for p go
through ``blocks.row_sum``), so the results are the same bits on any thread count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from . import blocks, noise
from .base import HardSpec, sign


def draws_saturated_only(n: int, numel: int) -> bool:
    """Whether xi is drawn for the n saturated elements only: at most a quarter of them.

    n draws cost less than a full draw at any n (and backward then redraws nothing), but
    forward keeps r as well; past a quarter saturated the path draws every element and
    backward redraws them, keeping x's memory as the other paths do (the memory contract a
    third-saturated tensor is tested against: ``test_gulcehre.test_saves_x_and_p_only``)."""
    return 4 * n <= numel


def forward(
    x: Tensor,
    p: Tensor,
    spec: HardSpec,
    alpha: float,
    c: float,
    kind: str,
    gen: torch.Generator | None,
) -> tuple[Tensor, tuple[Tensor, ...], Tensor | None]:
    """(phi(x, xi), the tensors backward needs, the generator's state before a full draw);
    ``x`` may be strided.

    The tensors are (s,) when nothing is saturated (phi = u) or when xi was drawn for every
    element (backward redraws it from the state: x's memory, as the other paths keep), and
    (s, r) when only the n saturated elements drew (then r holds xi, and backward is a few
    ops).
    """
    s = F.softshrink(x, spec.threshold).contiguous()  # row-major: the draws' order
    sat = s.bool()  # Delta != 0: the elements where sigma != 0
    n = int(torch.count_nonzero(sat))
    if n == 0:
        return spec.linear(x), (s,), None
    state = None
    if draws_saturated_only(n, x.numel()):
        xi = torch.zeros_like(s).masked_scatter_(sat, noise.sample(kind, s.new_empty(n), gen))
    else:
        state = noise.rng_state(gen, x.device)
        xi = noise.sample(kind, s, gen)
    k = spec.slope
    g = torch.mul(s, p.abs().mul_(-k)).sigmoid_()
    q = g - 0.5
    a = q.abs().mul_(xi)  # |q|*xi: q*a is the noise term's q*|q|*xi, and r = a*g*(1 - g)
    y = torch.add(x, s, alpha=-alpha).addcmul_(q, a, value=sign(1.0 - alpha) * c / k)
    if k != 1.0 or spec.offset != 0.0:
        y.mul_(k).add_(spec.offset)
    if state is not None:
        return y, (s,), state
    return y, (s, torch.ops.aten.sigmoid_backward(a, g)), None


def backward(
    saved: tuple[Tensor, ...],
    p: Tensor,
    spec: HardSpec,
    alpha: float,
    c: float,
    kind: str,
    state: Tensor | None,
    grad: Tensor,
    need_p: bool,
) -> tuple[Tensor, Tensor | None]:
    """(dL/dx, dL/dp shaped like ``p`` or None) for upstream ``grad``, from forward's
    tensors (s and r, or s with the generator state xi is redrawn from)."""
    s = saved[0]
    k, coef = spec.slope, sign(1.0 - alpha) * 2.0 * c
    p_abs = p.abs()
    r, redrawn = kept_noise(saved, kind, state)
    if redrawn:  # r holds xi: r = |q|*xi*g*(1 - g)
        g = torch.mul(s, p_abs * -k).sigmoid_()  # sigmoid(|p|*Delta)
        r = torch.ops.aten.sigmoid_backward(g.sub(0.5).abs_().mul_(r), g)
    gr = grad * r
    grad_x = torch.add(grad, torch.ops.aten.softshrink_backward(grad, s, 0.0), alpha=-alpha)
    if k != 1.0:
        grad_x.mul_(k)
    grad_x.addcmul_(gr, p_abs, value=-coef * k)
    if not need_p:
        return grad_x, None
    total = _sum_to(gr.mul_(s), p)
    return grad_x, total.mul_(torch.sign(p)).mul_(-coef * k)


def kept_noise(saved: tuple[Tensor, ...], kind: str, state: Tensor | None) -> tuple[Tensor, bool]:
    """(r, False) where forward kept r (only the saturated elements drew), else (xi redrawn
    from the generator state forward took before its full draw, True)."""
    if len(saved) == 2:
        return saved[1], False
    assert state is not None, "a full draw keeps the generator state"
    return noise.resample(kind, saved[0], state), True


def _sum_to(w: Tensor, p: Tensor) -> Tensor:
    """``w`` summed to the shape of ``p`` (which broadcasts against it), serially: the sums
    over dim 0 and over a scalar p's elements run in chunks under ATen's grain, in order."""
    if p.numel() == 1:
        return blocks.row_sum(w.reshape(-1, 1)).view(p.shape)
    if w.dim() == 2 and p.numel() == w.shape[1] and p.shape[-1] == w.shape[1]:
        total = blocks.row_sum(w)  # [batch, units], p [units] or [1, units]
        return total if p.dim() == 1 else total.view(p.shape)
    if w.dim() >= 2 and p.dim() == w.dim() and p.shape[0] == 1:
        rows = blocks.row_sum(w.reshape(w.shape[0], -1)).view(1, *w.shape[1:])
        return rows.sum_to_size(p.shape)
    return w.sum_to_size(p.shape)
