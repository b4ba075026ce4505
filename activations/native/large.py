"""Large float32 tensors (at least ``blocks.WHOLE`` elements): one pass each way, in spans.

A forward reads x and the noise and writes the output over the noise; a backward reads x,
the regenerated noise and the upstream gradient and writes dL/dx over the noise. Each call
handles a fixed span of rows on one thread of ``noise.executor()`` (ctypes releases the
GIL); the spans follow the tensor's shape, never the thread count, and the per-span partial
sums of dL/dp are added in span order (``hard_blocks.sum_parts``), so a seed gives the same
bits on one thread or many.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .. import hard_blocks, noise
from ..base import HardSpec, sign
from .loader import library

# Elements per call: the spans depend on the shape alone; 64 spans for 16M elements.
SPAN = 1 << 18


def _spans(rows: int, width: int) -> list[tuple[int, int]]:
    step = max(1, SPAN // max(width, 1))
    return [(i, min(i + step, rows)) for i in range(0, rows, step)]


def _run(call: Callable[[int, tuple[int, int]], None], spans: Sequence[tuple[int, int]]) -> None:
    """``call(index, span)`` for every span, on the pool when there are several."""
    if len(spans) < 2 or torch.get_num_threads() < 2:
        for index, span in enumerate(spans):
            call(index, span)
        return
    list(noise.executor().map(call, range(len(spans)), spans))


def _row(x: Tensor) -> Tensor:
    """One row of x (dim 0), over which a per-channel p broadcasts: x itself when 1-D."""
    return x[:1] if x.dim() >= 2 else x


def _per_channel(x: Tensor, p: Tensor, scale: float) -> tuple[Tensor, int, int]:
    """(scale * |p| broadcast to one row of x as a contiguous [width] row, rows, width)."""
    rows = x.shape[0] if x.dim() >= 2 else 1
    width = x.numel() // rows
    row = p.detach().expand_as(_row(x)).reshape(width).abs().mul(scale).contiguous()
    return row.to(torch.float32), rows, width


def hard_forward(
    x: Tensor, p: Tensor, spec: HardSpec, alpha: float, c: float, xi: Tensor
) -> Tensor:
    """phi(x, xi) of a noisy hard unit, written into (and returning) ``xi``."""
    lib = library()
    assert lib is not None
    k, coefk = spec.slope, sign(1.0 - alpha) * c / spec.slope
    affine = int(k != 1.0 or spec.offset != 0.0)
    consts = (spec.threshold, alpha, coefk, k, spec.offset, affine)
    if p.numel() == 1:
        pk = -k * abs(float(p.detach().reshape(())))

        def flat(_: int, span: tuple[int, int]) -> None:
            lib.hard_forward_flat(x.data_ptr(), xi.data_ptr(), pk, *span, *consts)

        _run(flat, _spans(x.numel(), 1))
        return xi
    pk_row, rows, width = _per_channel(x, p, -k)

    def block(_: int, span: tuple[int, int]) -> None:
        lib.hard_forward(x.data_ptr(), xi.data_ptr(), pk_row.data_ptr(), *span, width, *consts)

    _run(block, _spans(rows, width))
    return xi


def hard_backward(
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
    lib = library()
    assert lib is not None
    g = grad.contiguous()
    if g.dtype != torch.float32:
        g = g.float()
    k, coef = spec.slope, sign(1.0 - alpha) * c / 2.0
    base, lin = (1.0 - alpha) * k, alpha * k
    flat = p.numel() == 1
    if flat:
        rows, width = x.numel(), 1
    else:
        pk_row, rows, width = _per_channel(x, p, -k)
        sr_row = pk_row * coef  # -p*k*dxi = sr * R: |p| * (-coef * k)
    spans = _spans(rows, width)
    parts = torch.zeros(len(spans), width, dtype=torch.float64) if need_p else None

    def part_ptr(index: int) -> int | None:
        return None if parts is None else parts[index].data_ptr()

    if flat:
        magnitude = abs(float(p.detach().reshape(())))
        pk, sr = -k * magnitude, -coef * k * magnitude

        def run_flat(index: int, span: tuple[int, int]) -> None:
            consts = (spec.threshold, base, lin, part_ptr(index))
            lib.hard_backward_flat(
                x.data_ptr(), xi.data_ptr(), g.data_ptr(), pk, sr, *span, *consts
            )

        _run(run_flat, spans)
    else:

        def run_block(index: int, span: tuple[int, int]) -> None:
            lib.hard_backward(
                x.data_ptr(),
                xi.data_ptr(),
                g.data_ptr(),
                pk_row.data_ptr(),
                sr_row.data_ptr(),
                *span,
                width,
                spec.threshold,
                base,
                lin,
                part_ptr(index),
            )

        _run(run_block, spans)
    if parts is None:
        return xi, None
    summed = hard_blocks.sum_parts(list(parts), x, p)  # in span order, to p's shape
    return xi, summed.to(p.dtype).mul_(torch.sign(p.detach()) * (-coef * k))


def nrelu_forward(x: Tensor, scale: float, z: Tensor) -> Tensor:
    """max(0, x + scale*sqrt(sigmoid(x))*z), written into (and returning) ``z``."""
    lib = library()
    assert lib is not None

    def call(_: int, span: tuple[int, int]) -> None:
        lib.nrelu_forward(x.data_ptr(), z.data_ptr(), scale, *span)

    _run(call, _spans(x.numel(), 1))
    return z


def nrelu_backward(x: Tensor, scale: float, z: Tensor, grad: Tensor) -> Tensor:
    """nrelu's pathwise dL/dx (z held fixed), written into (and returning) ``z``."""
    lib = library()
    assert lib is not None
    g = grad.contiguous()
    if g.dtype != torch.float32:
        g = g.float()

    def call(_: int, span: tuple[int, int]) -> None:
        lib.nrelu_backward(x.data_ptr(), z.data_ptr(), g.data_ptr(), scale, *span)

    _run(call, _spans(x.numel(), 1))
    return z
