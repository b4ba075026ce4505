"""Noise sampling on the input's device/dtype, and RNG snapshots for regenerating it."""

from __future__ import annotations

import math

import torch
from torch import Tensor

# Every family is drawn with unit variance, except half_normal which is |N(0, 1)|.
KINDS = ("gaussian", "normal", "laplace", "uniform", "half_normal")
HALF_NORMAL_MEAN = math.sqrt(2.0 / math.pi)
HALF_NORMAL_STD = math.sqrt(1.0 - 2.0 / math.pi)
_SQRT3 = math.sqrt(3.0)
_LAPLACE_B = 1.0 / math.sqrt(2.0)  # Var(Laplace(b)) = 2 b^2 = 1


def mean_of(kind: str) -> float:
    """E[xi] of a unit noise family."""
    return HALF_NORMAL_MEAN if kind == "half_normal" else 0.0


def std_of(kind: str) -> float:
    """Std of a unit noise family."""
    return HALF_NORMAL_STD if kind == "half_normal" else 1.0


def sample(
    kind: str, like: Tensor, generator: torch.Generator | None, scale: float = 1.0
) -> Tensor:
    """Noise shaped like ``like`` (same device and dtype), ``scale`` times a unit family."""
    out = torch.empty_like(like, memory_format=torch.contiguous_format)
    if kind in ("gaussian", "normal"):
        return out.normal_(0.0, scale, generator=generator)
    if kind == "half_normal":
        return out.normal_(0.0, scale, generator=generator).abs_()
    if kind == "uniform":
        half = scale * _SQRT3
        return out.uniform_(-half, half, generator=generator)
    if kind == "laplace":
        return _laplace(out, scale * _LAPLACE_B, generator)
    raise ValueError(f"unknown noise kind {kind!r}; valid: {', '.join(KINDS)}")


def _laplace(out: Tensor, b: float, generator: torch.Generator | None) -> Tensor:
    # Inverse CDF from one uniform draw: cheaper than the difference of two exponentials.
    u = out.uniform_(-0.5, 0.5, generator=generator)
    tail = torch.log1p(-2.0 * u.abs()).clamp_min_(torch.finfo(u.dtype).min)
    return tail.mul_(torch.sign(u)).mul_(-b)


def default_generator(device: torch.device) -> torch.Generator:
    """The global generator torch uses for ``device`` when none is given."""
    if device.type == "cpu":
        return torch.default_generator
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.default_generators[index]
    raise NotImplementedError(f"pass generator= for noise on device type {device.type!r}")


def rng_state(generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Snapshot of the generator that the next ``sample`` on ``device`` will use."""
    gen = generator if generator is not None else default_generator(device)
    return gen.get_state()


def resample(kind: str, like: Tensor, state: Tensor, scale: float = 1.0) -> Tensor:
    """Redraw exactly the noise ``sample`` drew from a generator in ``state``."""
    gen = torch.Generator(device=like.device)
    gen.set_state(state)
    return sample(kind, like, gen, scale)
