"""Fused CUDA kernels (Triton) for NoisyReLU: the noise is drawn inside the kernel.

The eager path costs three passes over memory in forward (draw the noise into a buffer,
relu, add) plus the buffer itself. The fused forward reads x once and writes y and the
1-byte mask ``x > 0`` once: 9 bytes per float32 element, the least a unit that must save
its mask can move. The noise comes from Triton's counter-based Philox generator keyed by a
seed drawn from the unit's ``torch.Generator`` (or the device's default one), so a seeded
run is reproducible and checkpoints that restore the CUDA RNG state restore the noise.
The draws are statistically those of the eager path but not bitwise equal to them.

Used automatically by ``noisy_relu`` (fixed sigma, any distribution) for CUDA tensors of
float32, float16 or bfloat16 when Triton is importable; everything else takes the eager
path, which stays the tested default on CPU.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

try:  # Triton ships with CUDA builds of PyTorch; CPU builds have none.
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the installed torch
    triton = None

KIND_CODES = {"gaussian": 0, "normal": 0, "uniform": 1, "laplace": 2}
_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_BLOCK = 2048
# Philox offsets are 32-bit element indices: larger tensors take the eager path.
_MAX_NUMEL = 2**31 - _BLOCK


def available(x: Tensor, kind: str) -> bool:
    """Whether the fused kernel can serve ``x`` with noise family ``kind``."""
    return (
        triton is not None
        and x.is_cuda
        and x.dtype in _DTYPES
        and kind in KIND_CODES
        and 0 < x.numel() <= _MAX_NUMEL
    )


if triton is not None:

    @triton.jit
    def _noise(seed, offsets, KIND: tl.constexpr):
        """Four unit-variance draws per Philox call (one call per 4 elements, not per 1)."""
        if KIND == 0:  # standard normal
            a, b, c, d = tl.randn4x(seed, offsets)
        else:
            a, b, c, d = tl.rand4x(seed, offsets)
            a, b, c, d = _shape(a, KIND), _shape(b, KIND), _shape(c, KIND), _shape(d, KIND)
        return a, b, c, d

    @triton.jit
    def _shape(u, KIND: tl.constexpr):
        """A uniform on [0, 1) to unit-variance uniform (KIND 1) or Laplace (KIND 2)."""
        if KIND == 1:  # uniform on [-sqrt 3, sqrt 3)
            return (u * 2.0 - 1.0) * 1.7320508075688772
        # Laplace, b = 1/sqrt 2, by the inverse CDF; 1 - 2|u| is kept off 0 (no -inf).
        v = u - 0.5
        tail = tl.log(tl.maximum(1.0 - 2.0 * tl.abs(v), 1.1920928955078125e-07))
        return tl.where(v < 0, 1.0, -1.0) * tail * 0.7071067811865476

    @triton.jit
    def _store_one(x_ptr, y_ptr, mask_ptr, offsets, n, sigma, eps):
        inside = offsets < n
        x = tl.load(x_ptr + offsets, mask=inside, other=0.0).to(tl.float32)
        positive = x > 0.0
        y = tl.where(positive, x, 0.0) + sigma * eps
        tl.store(y_ptr + offsets, y.to(y_ptr.dtype.element_ty), mask=inside)
        tl.store(mask_ptr + offsets, positive, mask=inside)

    @triton.jit
    def _forward_kernel(x_ptr, y_ptr, mask_ptr, seed_ptr, n, sigma, KIND: tl.constexpr,
                        BLOCK: tl.constexpr):  # fmt: skip
        # A block is four contiguous quarters; Philox counter j feeds element j of each.
        QUARTER: tl.constexpr = BLOCK // 4
        start = tl.program_id(0) * BLOCK
        lane = tl.arange(0, QUARTER)
        seed = tl.load(seed_ptr)
        a, b, c, d = _noise(seed, tl.program_id(0) * QUARTER + lane, KIND)
        _store_one(x_ptr, y_ptr, mask_ptr, start + lane, n, sigma, a)
        _store_one(x_ptr, y_ptr, mask_ptr, start + QUARTER + lane, n, sigma, b)
        _store_one(x_ptr, y_ptr, mask_ptr, start + 2 * QUARTER + lane, n, sigma, c)
        _store_one(x_ptr, y_ptr, mask_ptr, start + 3 * QUARTER + lane, n, sigma, d)

    @triton.jit
    def _backward_kernel(grad_ptr, mask_ptr, out_ptr, n, BLOCK: tl.constexpr):
        offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        inside = offsets < n
        grad = tl.load(grad_ptr + offsets, mask=inside, other=0.0)
        keep = tl.load(mask_ptr + offsets, mask=inside, other=0)
        # grad * mask, as the eager path computes it (a NaN gradient stays NaN).
        tl.store(out_ptr + offsets, grad * keep.to(grad.dtype), mask=inside)


def _grid(n: int) -> tuple[int]:
    return (math.ceil(n / _BLOCK),)


def draw_seed(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """A Philox seed on ``x``'s device from ``generator`` (no host synchronisation)."""
    return torch.randint(
        0, 2**31 - 1, (1,), device=x.device, dtype=torch.int64, generator=generator
    )


def noisy_relu_forward(
    x: Tensor, sigma: float, kind: str, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """(relu(x) + sigma * eps, x > 0) in one kernel; ``x`` must pass ``available``."""
    x = x.contiguous()
    y = torch.empty_like(x)
    mask = torch.empty(x.shape, dtype=torch.bool, device=x.device)
    seed = draw_seed(x, generator)
    n = x.numel()
    _forward_kernel[_grid(n)](x, y, mask, seed, n, float(sigma), KIND=KIND_CODES[kind],
                              BLOCK=_BLOCK)  # fmt: skip
    return y, mask


def masked_grad(grad: Tensor, mask: Tensor) -> Tensor:
    """grad * mask in one kernel."""
    grad = grad.contiguous()
    out = torch.empty_like(grad)
    n = grad.numel()
    _backward_kernel[_grid(n)](grad, mask, out, n, BLOCK=_BLOCK)
    return out


class FusedNoisyReLUFn(torch.autograd.Function):
    """relu(x) + sigma * eps with eps drawn in-kernel; saves only the 1-byte mask."""

    @staticmethod
    def forward(
        ctx: FunctionCtx, x: Tensor, sigma: float, kind: str, gen: torch.Generator | None
    ) -> Tensor:
        y, mask = noisy_relu_forward(x, sigma, kind, gen)
        ctx.save_for_backward(mask)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None, None]:
        (mask,) = ctx.saved_tensors
        return masked_grad(grad, mask), None, None, None
