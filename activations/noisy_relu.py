"""NoisyReLU (additive noise after the ReLU) and Nair & Hinton's NReLU (noise inside)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx

from . import blocks, censored, fused, native, noise
from .base import NoisyActivation, channel_view
from .errors import ParamError
from .params import Param
from .registry import register

# Every zero-mean law: E[y | x] stays max(0, x), so eval needs no correction.
_DISTRIBUTIONS = noise.names(lambda law: law.mean == 0.0)


class _NoisyReLUFn(torch.autograd.Function):
    """relu(x) + sigma * eps; saves only the bool mask x > 0 (1 byte/element)."""

    @staticmethod
    def forward(
        ctx: FunctionCtx, x: Tensor, sigma: float, kind: str, gen: torch.Generator | None
    ) -> Tensor:
        mask = x > 0
        y = noise.sample(kind, x, gen, scale=sigma)
        y.add_(x.clamp(min=0))
        ctx.save_for_backward(mask)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None, None]:
        (mask,) = ctx.saved_tensors
        # The noise does not depend on x: ReLU's gradient is the whole story.
        return grad * mask, None, None, None


class _LearnedSigmaFn(torch.autograd.Function):
    """relu(x) + sigma_c * eps with sigma learned; regenerates eps in backward."""

    @staticmethod
    def forward(
        ctx: FunctionCtx, x: Tensor, sigma: Tensor, kind: str, gen: torch.Generator | None
    ) -> Tensor:
        state = noise.rng_state(gen, x.device)
        eps = noise.sample(kind, x, gen)
        ctx.save_for_backward(x > 0, sigma)
        ctx.state, ctx.kind = state, kind  # type: ignore[attr-defined]
        return eps.mul_(sigma).add_(x.clamp(min=0))

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        mask, sigma = ctx.saved_tensors
        grad_sigma = None
        if ctx.needs_input_grad[1]:
            # Redrawing eps from the saved RNG state costs one RNG pass but no
            # 4-byte/element buffer; dL/dsigma_c = sum over channel c of grad * eps.
            eps = noise.resample(ctx.kind, grad, ctx.state)
            grad_sigma = (grad * eps).sum_to_size(sigma.shape)
        grad_x = grad * mask if ctx.needs_input_grad[0] else None
        return grad_x, grad_sigma, None, None


@register(
    "noisy_relu",
    aliases=("noisyrelu",),
    description=(
        "Train: max(0, x) + eps, Var(eps) = (sigma * noise_scale)^2, eps any zero-mean law of "
        "GET /v1/noise-laws; eval: max(0, x). learn_sigma learns a positive sigma per channel "
        "(dim 1)."
    ),
    reference="seed 000 (NoisyReLU); Gulcehre et al. 2016 for noise annealing",
    params=(
        Param("sigma", "float", 0.1, 0.0, 10.0, description="noise std (typical 0.1-0.5)"),
        Param("distribution", "str", "gaussian", choices=_DISTRIBUTIONS, description="noise law"),
        Param("learn_sigma", "bool", False, description="learn sigma per channel (softplus)"),
        Param("num_channels", "int", None, 1, None, description="channels when learn_sigma"),
    ),
    noisy=True,
)
class NoisyReLU(NoisyActivation):
    """max(0, x) plus zero-mean noise of std sigma * noise_scale in training."""

    is_sparse_family = True
    noise_side = "output"
    # False forces the eager path on CUDA too (the fused kernel's tests compare the two).
    use_fused: bool = True

    def __init__(
        self,
        sigma: float = 0.1,
        distribution: str = "gaussian",
        learn_sigma: bool = False,
        num_channels: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(generator)
        self.check_params(
            {"sigma": sigma, "learn_sigma": learn_sigma, "num_channels": num_channels}
        )
        self.sigma = sigma
        self.distribution = distribution
        self.raw_sigma: nn.Parameter | None = None
        if learn_sigma:
            if num_channels is None:  # a model builder passes its layer width here
                raise ParamError("num_channels", "noisy_relu: learn_sigma needs 'num_channels'")
            # softplus^-1(sigma), so the learned sigma starts at the given value.
            raw = math.log(math.expm1(sigma))
            self.raw_sigma = nn.Parameter(torch.full((num_channels,), raw))

    @staticmethod
    def check_params(params: dict[str, Any]) -> None:
        """Cross-parameter checks for the learned-sigma variant.

        `num_channels` may be left out of a spec: the model builder fills in the layer width.
        """
        if not params.get("learn_sigma"):
            return
        if params.get("sigma", 0.1) <= 0:
            raise ParamError("sigma", "noisy_relu: learn_sigma needs param 'sigma' > 0")

    def learned_sigma(self) -> Tensor | None:
        """The positive per-channel sigma, or None for a fixed sigma."""
        return None if self.raw_sigma is None else F.softplus(self.raw_sigma)

    def forward(self, x: Tensor) -> Tensor:
        if not self.noise_on():
            return torch.relu(x)
        sigma = self.learned_sigma()
        if sigma is None:
            if self.sigma == 0.0:
                return torch.relu(x)
            # On CUDA one Triton kernel draws the noise in place of three eager passes.
            fn: type[torch.autograd.Function] = _NoisyReLUFn
            if self.use_fused and fused.available(x, self.distribution):
                fn = fused.FusedNoisyReLUFn
            return fn.apply(x, self.sigma * self.noise_scale, self.distribution, self.generator)
        sigma = channel_view(sigma.to(x.dtype) * self.noise_scale, x)
        return _LearnedSigmaFn.apply(x, sigma, self.distribution, self.generator)

    def effective_noise_std(self, x: Tensor) -> Tensor | float:
        sigma = self.learned_sigma()
        if sigma is None:
            return self.sigma * self.noise_scale
        return channel_view(sigma.detach() * self.noise_scale, x).expand_as(x)


def _nrelu_pre(
    xb: Tensor, root: Tensor, scale: float, zb: Tensor, out: Tensor | None = None
) -> Tensor:
    """x + scale * sqrt(sigmoid(x)) * z of one block, by the same op in forward and backward
    (so backward's mask pre > 0 is forward's, bit for bit)."""
    return torch.addcmul(xb, root, zb, value=scale, out=out)


class _NReLUFn(torch.autograd.Function):
    """relu(x + std(x) z), pathwise gradient; saves x and an RNG state, not z.

    Both passes run in one native loop (``native``, float32 CPU) or else block by block
    (``blocks``): the temporaries stay in cache.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, scale: float, gen: torch.Generator | None) -> Tensor:
        x = x.contiguous()
        state = noise.rng_state(gen, x.device)
        y = noise.sample("gaussian", x, gen)  # z, overwritten block by block with the output
        ctx.save_for_backward(x)
        ctx.state, ctx.scale = state, scale  # type: ignore[attr-defined]
        if native.available(x):  # float32 on the CPU: one pass in C
            return native.nrelu_forward(x, scale, y)
        lay = blocks.layout(x, False)
        xv, yv = lay.view(x), lay.view(y)

        def block(i: int, j: int) -> None:
            root = torch.sigmoid(xv[i:j]).sqrt_()
            _nrelu_pre(xv[i:j], root, scale, yv[i:j], out=yv[i:j]).clamp_(min=0)

        blocks.run(block, lay)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (x,) = ctx.saved_tensors
        z = noise.resample("gaussian", x, ctx.state)  # overwritten with dL/dx
        if native.available(x):
            return native.nrelu_backward(x, ctx.scale, z, grad), None, None
        lay, scale = blocks.layout(x, False), ctx.scale
        xv, zv, gv = lay.view(x), lay.view(z), lay.view(grad.contiguous())
        one = torch.ones((), dtype=x.dtype)

        def block(i: int, j: int) -> None:
            xb, zb = xv[i:j], zv[i:j]
            s = torch.sigmoid(xb)
            root = s.sqrt()
            pre = _nrelu_pre(xb, root, scale, zb)
            active = torch.gt(pre, 0.0, out=pre)  # 1.0/0.0 in place: float math beats a bool mask
            # d/dx [scale * sqrt(s)] = scale * sqrt(s) * (1 - s) / 2, with z held fixed.
            dstd = torch.addcmul(root, root, s, value=-1.0)
            local = torch.addcmul(one, dstd, zb, value=0.5 * scale).mul_(active)
            torch.mul(gv[i:j], local, out=zb)

        blocks.run(block, lay)
        return z, None, None


@register(
    "nrelu",
    aliases=("noisy_rectified_linear",),
    description=(
        "Train: max(0, x + eps), eps ~ N(0, sigmoid(x)) scaled by scale * noise_scale "
        "(std = scale * sqrt(sigmoid(x))); eval: max(0, x). Pathwise gradient, z held fixed."
    ),
    reference="Nair & Hinton 2010 (variance convention from secondary sources)",
    params=(Param("scale", "float", 1.0, 0.0, 10.0, description="multiplies the noise std"),),
    noisy=True,
)
class NReLU(NoisyActivation):
    """Noisy rectified linear unit with input-dependent noise inside the max."""

    is_sparse_family = True
    noise_side = "input"

    def __init__(self, scale: float = 1.0, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        level = self.scale * self.noise_scale
        if not self.noise_on() or level == 0.0:
            return torch.relu(x)
        return _NReLUFn.apply(x, level, self.generator)

    def effective_noise_std(self, x: Tensor) -> Tensor:
        return torch.sigmoid(x.detach()).sqrt() * (self.scale * self.noise_scale)

    def output_noise_var(self, x: Tensor) -> Tensor:
        """Var(max(0, x + eps) | x), eps ~ N(0, scale² s² sigmoid(x)): a Gaussian censored
        at 0 (activations.censored), float64."""
        level = self.scale * self.noise_scale
        var = torch.sigmoid(x.detach().double()) * (level * level)
        return censored.clipped_normal_var(x, var, 0.0, float("inf"))
