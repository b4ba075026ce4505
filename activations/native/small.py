"""Small float32 tensors (a recurrent gate's): ``hard_dense`` in three native calls.

The kernels take the same draws as ``hard_dense`` and keep the same tensors: a shrink that
counts the saturated elements, a forward that places the n draws (or reads a full draw) and
a backward that reads r (or redraws xi from the generator state).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import hard_dense, noise
from ..base import HardSpec, sign
from .loader import library


def _matrix(x: Tensor) -> tuple[int, int, int]:
    """(rows, width, row stride) of x seen as [rows, width] (rows: dim 0)."""
    if x.dim() == 2:
        return x.shape[0], x.shape[1], x.stride(0)
    rows = x.shape[0] if x.dim() >= 2 else 1
    width = x.numel() // rows
    return rows, width, width


def _p_arg(s: Tensor, p: Tensor) -> tuple[Tensor, int, bool]:
    """(p as the kernels read it, its stride, whether it was broadcast to a row of ``s``).

    A scalar p is read once (stride 0); a p with one value per column of [rows, width]
    (a recurrent gate's [units]) as it is (stride 1); any other (a conv's [1, C, 1, 1]) is
    broadcast to one row of ``s`` first.
    """
    p = p.detach()
    if p.numel() == 1:
        return p.reshape(1).to(torch.float32), 0, False
    row = s[:1] if s.dim() >= 2 else s
    if p.numel() == row.numel() and p.dtype == torch.float32 and p.is_contiguous():
        return p, 1, False
    return p.expand_as(row).reshape(row.numel()).to(torch.float32).contiguous(), 1, True


def _checked(status: int) -> None:
    if status == -1:
        raise MemoryError("native kernel: out of memory for its row buffers")
    if status != 0:
        raise RuntimeError(f"native kernel: the saturated elements miscounted ({status})")


def hard_small_forward(
    x: Tensor,
    p: Tensor,
    spec: HardSpec,
    alpha: float,
    c: float,
    kind: str,
    gen: torch.Generator | None,
) -> tuple[Tensor, tuple[Tensor, ...], Tensor | None]:
    """``hard_dense.forward`` in two native calls: the same draws, the same tensors kept."""
    lib = library()
    assert lib is not None
    rows, width, ld = _matrix(x)
    s = torch.empty(x.shape, dtype=x.dtype)
    n = lib.hard_shrink(x.data_ptr(), ld, s.data_ptr(), rows, width, spec.threshold)
    if n == 0:
        return spec.linear(x), (s,), None
    state, draws = None, None
    if hard_dense.draws_saturated_only(n, x.numel()):
        xi, draws = torch.empty_like(s), noise.sample(kind, s.new_empty(n), gen)
    else:
        state = noise.rng_state(gen, x.device)
        xi = noise.sample(kind, s, gen)
    k = spec.slope
    pp, pstride, _ = _p_arg(s, p)
    y = torch.empty_like(s)
    affine = int(k != 1.0 or spec.offset != 0.0)
    coefk = sign(1.0 - alpha) * c / k
    _checked(
        lib.hard_small_forward(
            x.data_ptr(),
            ld,
            s.data_ptr(),
            None if draws is None else draws.data_ptr(),
            n,
            xi.data_ptr(),
            pp.data_ptr(),
            pstride,
            y.data_ptr(),
            rows,
            width,
            alpha,
            coefk,
            k,
            spec.offset,
            affine,
            int(state is None),
        )
    )
    if state is not None:
        return y, (s,), state
    return y, (s, xi), None  # xi now holds r


def hard_small_backward(
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
    """``hard_dense.backward`` in one native call (after the redraw of a full draw)."""
    lib = library()
    assert lib is not None
    s = saved[0]
    k, coef = spec.slope, sign(1.0 - alpha) * 2.0 * c
    rx, from_xi = hard_dense.kept_noise(saved, kind, state)  # r, or xi redrawn
    rows, width, _ = _matrix(s)
    g = grad.contiguous()
    pp, pstride, broadcast = _p_arg(s, p)
    out = torch.empty_like(s)
    dp = torch.empty_like(pp) if need_p else None
    _checked(
        lib.hard_small_backward(
            s.data_ptr(),
            rx.data_ptr(),
            g.data_ptr(),
            pp.data_ptr(),
            pstride,
            out.data_ptr(),
            None if dp is None else dp.data_ptr(),
            rows,
            width,
            alpha,
            k,
            -coef * k,
            -coef * k,
            from_xi,
        )
    )
    if dp is None:
        return out, None
    if broadcast:  # one value per element of a row: summed to p's shape
        row = s[:1] if s.dim() >= 2 else s
        return out, dp.view(row.shape).sum_to_size(p.shape).to(p.dtype)
    return out, dp.view(p.shape).to(p.dtype)
