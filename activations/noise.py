"""Noise laws, one registration each; sampling on the input's device/dtype; RNG snapshots."""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .names import Registry

_SQRT3 = math.sqrt(3.0)
_LAPLACE_B = 1.0 / math.sqrt(2.0)  # Var(Laplace(b)) = 2 b^2 = 1
HALF_NORMAL_MEAN = math.sqrt(2.0 / math.pi)
HALF_NORMAL_STD = math.sqrt(1.0 - 2.0 / math.pi)

# (like, generator, scale) -> noise shaped like ``like``, ``scale`` times the unit law.
Sampler = Callable[[Tensor, torch.Generator | None, float], Tensor]


@dataclass(frozen=True)
class Law:
    """One noise law: its sampler, its moments, its fused-kernel code and its catalogue text.

    Every law is drawn with unit variance, except half_normal, which is |N(0, 1)| (its
    mean and std say so). ``kernel`` is the ``KIND`` code of the law's branch in the
    Triton draw ``activations.fused._noise`` (None: the law takes the eager path
    everywhere). Units read the registry when they are defined: register a law here.
    """

    name: str
    sampler: Sampler
    description: str
    reference: str
    mean: float = 0.0
    std: float = 1.0
    kernel: int | None = None
    aliases: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable catalogue row."""
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "description": self.description,
            "reference": self.reference,
            "mean": self.mean,
            "std": self.std,
            "fused": self.kernel is not None,
        }


_LAWS: Registry[Law] = Registry("noise kind", list_aliases=True)


def register(law: Law) -> Law:
    """Add a noise law under its name and aliases; refuses a spelling already taken."""
    return _LAWS.add(law.name, law, aliases=law.aliases)


def law(kind: str) -> Law:
    """The law registered as ``kind`` (a name or an alias); UnknownNameError if none."""
    return _LAWS.get(kind)


def laws() -> list[Law]:
    """Every registered law once, in registration order."""
    return _LAWS.entries()


def names(supports: Callable[[Law], bool] = lambda _: True) -> tuple[str, ...]:
    """The names of the laws that ``supports`` accepts (a unit's ``choices``)."""
    return tuple(each.name for each in laws() if supports(each))


def spellings(*kinds: str) -> tuple[str, ...]:
    """``kinds`` after checking each is a registered name or alias (a unit's ``choices``)."""
    for kind in kinds:
        law(kind)
    return kinds


def mean_of(kind: str) -> float:
    """E[xi] of a unit noise law."""
    return law(kind).mean


def std_of(kind: str) -> float:
    """Std of a unit noise law."""
    return law(kind).std


# CPU tensors of at least this many elements are drawn in chunks of this size, in parallel.
CHUNK = 1 << 20
_pool: ThreadPoolExecutor | None = None


def sample(
    kind: str, like: Tensor, generator: torch.Generator | None, scale: float = 1.0
) -> Tensor:
    """Noise shaped like ``like`` (same device and dtype), ``scale`` times a unit law."""
    return law(kind).sampler(like, generator, scale)


def _empty(like: Tensor) -> Tensor:
    return torch.empty_like(like, memory_format=torch.contiguous_format)


def _gaussian(like: Tensor, generator: torch.Generator | None, scale: float) -> Tensor:
    return fill(_empty(like), lambda t, g: t.normal_(0.0, scale, generator=g), generator)


def _half_normal(like: Tensor, generator: torch.Generator | None, scale: float) -> Tensor:
    return _gaussian(like, generator, scale).abs_()


def _uniform(like: Tensor, generator: torch.Generator | None, scale: float) -> Tensor:
    half = scale * _SQRT3
    return fill(_empty(like), lambda t, g: t.uniform_(-half, half, generator=g), generator)


def _laplace(like: Tensor, generator: torch.Generator | None, scale: float) -> Tensor:
    """Laplace(0, b = scale / sqrt 2) by the inverse CDF of one uniform (not two exponentials).

    The uniform is drawn in at least float32 (a bf16 uniform has 8 bits: its tail would stop
    at 4 sigma) and 2|u| is kept below 1, where log1p(-2|u|) is -inf; u = -1/2 is a value
    the samplers do return (about once in 2**24 float32 draws).
    """
    b = scale * _LAPLACE_B
    dtype = like.dtype if like.dtype == torch.float64 else torch.float32
    u = torch.empty(like.shape, dtype=dtype, device=like.device)
    fill(u, lambda t, g: t.uniform_(-0.5, 0.5, generator=g), generator)
    two_u = u.abs().mul_(2.0).clamp_max_(1.0 - torch.finfo(dtype).eps)
    tail = torch.log1p(two_u.neg_()).mul_(torch.sign(u)).mul_(-b)
    return tail if tail.dtype == like.dtype else tail.to(like.dtype)


def fill(
    out: Tensor,
    draw: Callable[[Tensor, torch.Generator | None], Tensor],
    generator: torch.Generator | None,
) -> Tensor:
    """``draw(out, generator)``, or on a large CPU tensor the same law drawn in parallel.

    PyTorch's CPU generator is serial: drawing is the bulk of a noisy unit's time on a
    multi-core CPU. A large tensor is split into fixed chunks of ``CHUNK`` elements, each
    drawn from its own generator seeded from one draw of ``generator``, on a thread pool.
    The chunking does not depend on the thread count, so a seed gives the same noise on
    any machine, and ``generator`` advances, so successive draws and resumes stay exact.
    Small tensors (and CUDA, whose generator is parallel) use ``generator`` directly.
    """
    n = out.numel()
    if out.device.type != "cpu" or n < 2 * CHUNK or not out.is_contiguous():
        return draw(out, generator)
    base = int(torch.randint(0, 2**62, (1,), generator=generator))
    flat = out.view(-1)
    chunks = [flat[i : i + CHUNK] for i in range(0, n, CHUNK)]
    gens = [torch.Generator().manual_seed(base + i) for i in range(len(chunks))]
    list(executor().map(draw, chunks, gens))
    return out


def executor() -> ThreadPoolExecutor:
    """The CPU pool for chunked draws and block math, sized by torch's thread count."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max(torch.get_num_threads(), 1), "actlab-noise")
    return _pool


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
    if device.type == "meta":  # shapes only (the memory estimate): no values, no state
        return torch.empty(0, dtype=torch.uint8)
    gen = generator if generator is not None else default_generator(device)
    return gen.get_state()


def resample(kind: str, like: Tensor, state: Tensor, scale: float = 1.0) -> Tensor:
    """Redraw exactly the noise ``sample`` drew from a generator in ``state``."""
    gen = torch.Generator(device=like.device)
    gen.set_state(state)
    return sample(kind, like, gen, scale)


register(
    Law(
        "gaussian",
        _gaussian,
        "N(0, 1)",
        "seed 000 (NoisyReLU); Gulcehre et al. 2016 (NAN)",
        kernel=0,
        aliases=("normal",),
    )
)
register(
    Law(
        "laplace",
        _laplace,
        "Laplace(0, b = 1/sqrt 2), by the inverse CDF of one uniform",
        "seed 000, section 7 (same variance, heavier tails)",
        kernel=2,
    )
)
register(
    Law(
        "uniform",
        _uniform,
        "U(-sqrt 3, sqrt 3)",
        "seed 000, section 7 (same variance, bounded)",
        kernel=1,
    )
)
register(
    Law(
        "half_normal",
        _half_normal,
        "|N(0, 1)|: mean sqrt(2/pi), std sqrt(1 - 2/pi)",
        "Gulcehre et al. 2016 (NAH)",
        mean=HALF_NORMAL_MEAN,
        std=HALF_NORMAL_STD,
        kernel=3,
    )
)
# Every spelling a unit may name, in registration order (aliases after their law's name).
KINDS = _LAWS.spellings()
