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
import os
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from . import noise

try:  # Triton ships with CUDA builds of PyTorch; CPU builds have none.
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the installed torch
    triton = None

# Each noise law's KIND code in `_noise` below, from its registration (activations.noise).
KIND_CODES = {k: law.kernel for k in noise.KINDS if (law := noise.law(k)).kernel is not None}
_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_BLOCK = 2048
# Philox offsets are 32-bit element indices: larger tensors take the eager path.
_MAX_NUMEL = 2**31 - _BLOCK


# TRITON_INTERPRET=1 runs the kernels on CPU tensors through Triton's interpreter (slow):
# how the kernels are tested on machines without a GPU.
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"


def available(x: Tensor, kind: str) -> bool:
    """Whether the fused kernel can serve ``x`` with noise family ``kind``."""
    return (
        triton is not None
        and (x.is_cuda or (INTERPRET and x.device.type == "cpu"))
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
        elif KIND == 3:  # half-normal |N(0, 1)| (Gulcehre et al.'s NAH)
            a, b, c, d = tl.randn4x(seed, offsets)
            a, b, c, d = tl.abs(a), tl.abs(b), tl.abs(c), tl.abs(d)
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

    # -- Gulcehre et al.'s noisy hard units: phi = alpha*h + (1-alpha)*u + d*sigma*xi --------

    @triton.jit
    def _hard_parts(x, p, slope, offset, lo, c, sgn1a):
        """u, h, Delta = h - u, g = sigmoid(p*Delta), sigma = c*(g - 1/2)^2, d."""
        u = x * slope + offset
        h = tl.minimum(tl.maximum(u, lo), 1.0)
        delta = h - u
        g = tl.sigmoid(p * delta)
        sig = c * (g - 0.5) * (g - 0.5)
        d = tl.where(x > 0.0, -sgn1a, tl.where(x < 0.0, sgn1a, 0.0))  # -sgn(x)*sgn(1-alpha)
        return u, h, delta, g, sig, d

    @triton.jit
    def _hard_forward_one(x_ptr, p_ptr, y_ptr, offsets, n, inner, channels, xi, slope,
                          offset, lo, alpha, c, sgn1a):  # fmt: skip
        inside = offsets < n
        x = tl.load(x_ptr + offsets, mask=inside, other=0.0).to(tl.float32)
        p = tl.load(p_ptr + (offsets // inner) % channels, mask=inside, other=1.0)
        u, h, _, _, sig, d = _hard_parts(x, p.to(tl.float32), slope, offset, lo, c, sgn1a)
        y = alpha * h + (1.0 - alpha) * u + d * sig * xi
        tl.store(y_ptr + offsets, y.to(y_ptr.dtype.element_ty), mask=inside)

    @triton.jit
    def _hard_backward_one(x_ptr, p_ptr, grad_ptr, gx_ptr, gp_ptr, offsets, n, inner,
                           channels, xi, slope, offset, lo, alpha, c, sgn1a,
                           threshold):  # fmt: skip
        inside = offsets < n
        x = tl.load(x_ptr + offsets, mask=inside, other=0.0).to(tl.float32)
        p = tl.load(p_ptr + (offsets // inner) % channels, mask=inside, other=1.0)
        p = p.to(tl.float32)
        _, _, delta, g, _, d = _hard_parts(x, p, slope, offset, lo, c, sgn1a)
        grad = tl.load(grad_ptr + offsets, mask=inside, other=0.0).to(tl.float32)
        linear = (tl.abs(x) < threshold) | (delta == 0.0)
        dxi = d * xi * ((g - 0.5) * g * (1.0 - g) * (2.0 * c))  # d*xi*dsigma/d(p*Delta)
        local = tl.where(linear, alpha * slope, 0.0) + (1.0 - alpha) * slope - dxi * p * slope
        tl.store(gx_ptr + offsets, (grad * local).to(gx_ptr.dtype.element_ty), mask=inside)
        tl.store(gp_ptr + offsets, grad * dxi * delta, mask=inside)

    @triton.jit
    def _hard_forward_kernel(x_ptr, p_ptr, y_ptr, seed_ptr, n, inner, channels, slope, offset,
                             lo, alpha, c, sgn1a, KIND: tl.constexpr,
                             BLOCK: tl.constexpr):  # fmt: skip
        QUARTER: tl.constexpr = BLOCK // 4
        start = tl.program_id(0) * BLOCK
        lane = tl.arange(0, QUARTER)
        a, b, cc, dd = _noise(tl.load(seed_ptr), tl.program_id(0) * QUARTER + lane, KIND)
        _hard_forward_one(x_ptr, p_ptr, y_ptr, start + lane, n, inner, channels, a, slope,
                          offset, lo, alpha, c, sgn1a)  # fmt: skip
        _hard_forward_one(x_ptr, p_ptr, y_ptr, start + QUARTER + lane, n, inner, channels, b,
                          slope, offset, lo, alpha, c, sgn1a)  # fmt: skip
        _hard_forward_one(x_ptr, p_ptr, y_ptr, start + 2 * QUARTER + lane, n, inner, channels,
                          cc, slope, offset, lo, alpha, c, sgn1a)  # fmt: skip
        _hard_forward_one(x_ptr, p_ptr, y_ptr, start + 3 * QUARTER + lane, n, inner, channels,
                          dd, slope, offset, lo, alpha, c, sgn1a)  # fmt: skip

    @triton.jit
    def _hard_backward_kernel(x_ptr, p_ptr, grad_ptr, gx_ptr, gp_ptr, seed_ptr, n, inner,
                              channels, slope, offset, lo, alpha, c, sgn1a, threshold,
                              KIND: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
        # The forward's noise, redrawn from the same seed and counters: nothing was saved.
        QUARTER: tl.constexpr = BLOCK // 4
        start = tl.program_id(0) * BLOCK
        lane = tl.arange(0, QUARTER)
        a, b, cc, dd = _noise(tl.load(seed_ptr), tl.program_id(0) * QUARTER + lane, KIND)
        _hard_backward_one(x_ptr, p_ptr, grad_ptr, gx_ptr, gp_ptr, start + lane, n, inner,
                           channels, a, slope, offset, lo, alpha, c, sgn1a, threshold)  # fmt: skip
        _hard_backward_one(x_ptr, p_ptr, grad_ptr, gx_ptr, gp_ptr, start + QUARTER + lane, n,
                           inner, channels, b, slope, offset, lo, alpha, c, sgn1a,
                           threshold)  # fmt: skip
        _hard_backward_one(x_ptr, p_ptr, grad_ptr, gx_ptr, gp_ptr, start + 2 * QUARTER + lane,
                           n, inner, channels, cc, slope, offset, lo, alpha, c, sgn1a,
                           threshold)  # fmt: skip
        _hard_backward_one(x_ptr, p_ptr, grad_ptr, gx_ptr, gp_ptr, start + 3 * QUARTER + lane,
                           n, inner, channels, dd, slope, offset, lo, alpha, c, sgn1a,
                           threshold)  # fmt: skip


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


def hard_available(x: Tensor, p: Tensor, kind: str) -> bool:
    """Whether the fused Gulcehre kernel can serve ``x`` with ``p`` (scalar or per channel)."""
    per_channel = p.numel() == 1 or (x.dim() >= 2 and x.shape[1] == p.numel())
    return available(x, kind) and per_channel


def _layout(x: Tensor, p: Tensor) -> tuple[Tensor, int, int]:
    """p flattened to one value per channel, the channel count, and elements per channel."""
    if p.numel() == 1:
        return p.reshape(1).contiguous(), 1, 1
    inner = math.prod(x.shape[2:])
    return p.reshape(-1).contiguous(), p.numel(), inner


class FusedNoisyHardFn(torch.autograd.Function):
    """phi(x, xi) of a noisy hard unit in one kernel; backward redraws xi from the seed.

    Saves x and a one-element seed: the noise is regenerated in backward by the same
    counter-based Philox draws, at no memory cost.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx, x: Tensor, p: Tensor, setting: Any, gen: torch.Generator | None
    ) -> Tensor:
        x = x.contiguous()
        flat_p, channels, inner = _layout(x, p)
        seed = draw_seed(x, generator=gen)
        y = torch.empty_like(x)
        n = x.numel()
        _hard_forward_kernel[_grid(n)](
            x, flat_p, y, seed, n, inner, channels, *_constants(setting),
            KIND=KIND_CODES[setting.kind], BLOCK=_BLOCK,
        )  # fmt: skip
        ctx.save_for_backward(x, p, seed)
        ctx.setting = setting  # type: ignore[attr-defined]
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        x, p, seed = ctx.saved_tensors
        setting = ctx.setting
        flat_p, channels, inner = _layout(x, p)
        grad = grad.contiguous()
        grad_x = torch.empty_like(x)
        grad_p_each = torch.empty(x.shape, dtype=torch.float32, device=x.device)
        n = x.numel()
        _hard_backward_kernel[_grid(n)](
            x, flat_p, grad, grad_x, grad_p_each, seed, n, inner, channels,
            *_constants(setting), float(setting.spec.threshold),
            KIND=KIND_CODES[setting.kind], BLOCK=_BLOCK,
        )  # fmt: skip
        grad_p = grad_p_each.sum_to_size(p.shape).to(p.dtype) if ctx.needs_input_grad[1] else None
        return grad_x if ctx.needs_input_grad[0] else None, grad_p, None, None


def _constants(setting: Any) -> tuple[float, ...]:
    """slope, offset, lo, alpha, c, sgn(1 - alpha) of a Gulcehre unit's setting."""
    spec, alpha = setting.spec, float(setting.alpha)
    sgn1a = float((1.0 - alpha > 0) - (1.0 - alpha < 0))
    return float(spec.slope), float(spec.offset), float(spec.lo), alpha, float(setting.c), sgn1a
