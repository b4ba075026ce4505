"""Noisy activation functions of Gulcehre, Moczulski, Denil & Bengio (ICML 2016)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx

from . import blocks, fused, hard_blocks, hard_dense, hard_sparse, native, noise
from .base import HARD_SIGMOID, HARD_TANH, HardSpec, NoisyActivation, channel_view, sign
from .params import Param
from .registry import register

_REF = "Gulcehre, Moczulski, Denil & Bengio 2016, Noisy Activation Functions, arXiv 1603.00391"


@dataclass(frozen=True)
class _Setting:
    """Constants one forward/backward pass needs besides the tensors."""

    spec: HardSpec
    alpha: float
    c: float  # base c times noise_scale
    kind: str  # "normal" (NAN) or "half_normal" (NAH)


def _parts(x: Tensor, p: Tensor, s: _Setting) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(alpha*h + (1-alpha)*u, d, sigma(x), Delta) for the paper's formulas."""
    u = s.spec.linear(x)
    h = torch.clamp(u, s.spec.lo, 1.0)
    delta = h - u
    sig = (torch.sigmoid(p * delta) - 0.5).square() * s.c
    # d(x) = -sgn(x) * sgn(1 - alpha); sgn(1 - alpha) is a constant.
    d = torch.sign(x) * -sign(1.0 - s.alpha)
    return h * s.alpha + u * (1.0 - s.alpha), d, sig, delta


class _NoisyHardFn(torch.autograd.Function):
    """phi(x, xi); backward regenerates xi from a saved RNG state, or reads it from forward.

    On CPU a small tensor (under ``blocks.WHOLE`` elements: a recurrent gate's) runs the
    closed form in the fewest ATen calls (``hard_dense``, which keeps xi in its r where only
    the saturated elements drew); a larger one in one pass of the native kernel (``native``,
    float32) or else in cache-sized blocks (``hard_blocks``); elsewhere as eager ops.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx, x: Tensor, p: Tensor, s: _Setting, gen: torch.Generator | None
    ) -> Tensor:
        ctx.setting, ctx.small = s, x.device.type == "cpu" and x.numel() < blocks.WHOLE  # type: ignore[attr-defined]
        if ctx.small:  # type: ignore[attr-defined]
            # x as it is (an LSTM's gates are a column slice): hard_dense reads it once.
            small = native.hard_small_forward if native.small_available(x) else hard_dense.forward
            y, saved, ctx.state = small(x, p, s.spec, s.alpha, s.c, s.kind, gen)  # type: ignore[attr-defined]
            ctx.save_for_backward(p, *saved)  # softshrink(x) in place of x (and r; hard_dense)
            return y
        x = x.contiguous()
        ctx.save_for_backward(x, p)
        ctx.state = noise.rng_state(gen, x.device)  # type: ignore[attr-defined]
        xi = noise.sample(s.kind, x, gen)
        if native.available(x):  # float32 on the CPU: one pass in C
            return native.hard_forward(x, p, s.spec, s.alpha, s.c, xi)
        if x.device.type == "cpu":
            return hard_blocks.forward(x, p, s.spec, s.alpha, s.c, xi)
        mix, d, sig, _ = _parts(x, p, s)
        return xi.mul_(sig).mul_(d).add_(mix)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        s: _Setting = ctx.setting
        need_x, need_p = ctx.needs_input_grad[:2]
        if ctx.small:
            p, *saved = ctx.saved_tensors
            if len(saved) == 1 and ctx.state is None:  # s alone, no draw: nothing saturated
                k = s.spec.slope
                grad_x = (grad if k == 1.0 else grad * k) if need_x else None
                return grad_x, torch.zeros_like(p), None, None
            args = (s.spec, s.alpha, s.c, s.kind, ctx.state, grad, need_p)
            small_bwd = hard_dense.backward
            if native.small_available(saved[0]):  # s: float32 when x was
                small_bwd = native.hard_small_backward
            grad_x, grad_p = small_bwd(tuple(saved), p, *args)
            return grad_x if need_x else None, grad_p, None, None
        x, p = ctx.saved_tensors
        xi = noise.resample(s.kind, x, ctx.state)
        if native.available(x):
            grad_x, grad_p = native.hard_backward(x, p, s.spec, s.alpha, s.c, xi, grad, need_p)
        elif x.device.type == "cpu":
            grad_x, grad_p = hard_blocks.backward(x, p, s.spec, s.alpha, s.c, xi, grad, need_p)
        else:
            grad_x, grad_p = _eager_backward(x, p, s, xi, grad)
        return grad_x if need_x else None, grad_p if need_p else None, None, None


def _sparse_index(x: Tensor, spec: HardSpec) -> Tensor | None:
    """The flat indices where Delta != 0 when the small-tensor path draws xi there only (under
    ``blocks.WHOLE`` elements, at most a quarter of them saturated); None when it draws every
    one."""
    if x.numel() >= blocks.WHOLE:
        return None
    idx = hard_sparse.saturated_index(x, spec)
    return idx if hard_dense.draws_saturated_only(idx.numel(), x.numel()) else None


def _eager_backward(
    x: Tensor, p: Tensor, s: _Setting, xi: Tensor, grad: Tensor
) -> tuple[Tensor, Tensor]:
    """(dL/dx, dL/dp) by whole-tensor eager ops: the closed form the block kernels follow."""
    _, d, _, delta = _parts(x, p, s)
    k, lin = s.spec.slope, ~s.spec.saturated(x) | (delta == 0)
    g = torch.sigmoid(p * delta)
    # dsigma/d(p*Delta); zero in the linear regime where Delta = 0 and g = 1/2.
    dsig = (g - 0.5) * g * (1 - g) * (2.0 * s.c)
    dxi = d * xi * dsig
    # dDelta/dx = -k off the linear regime, so the noise term adds -k * p * dxi.
    local = lin.to(x.dtype) * (s.alpha * k) + (1.0 - s.alpha) * k - dxi * p * k
    return grad * local, (grad * dxi * delta).sum_to_size(p.shape)


class _NoisyHard(NoisyActivation):
    """Shared body of noisy_hard_tanh and noisy_hard_sigmoid."""

    spec: HardSpec
    noise_side = "output"  # d * sigma(x) * xi added to the (mixed) output
    # The fused CUDA kernel (activations.fused.FusedNoisyHardFn) is opt-in: its tests pass in
    # Triton's interpreter, but it has not yet run compiled on a GPU. Set True to use it.
    use_fused: bool = False

    def __init__(
        self,
        alpha: float,
        c: float,
        noise: str,
        num_units: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(generator)
        self.alpha, self.c, self.noise = alpha, c, noise
        # p: one learned slope per unit (dim 1), initialised to 1 as in the paper.
        self.p = nn.Parameter(torch.ones(num_units) if num_units else torch.ones(()))

    def _setting(self) -> _Setting:
        return _Setting(self.spec, self.alpha, self.c * self.noise_scale, self.noise)

    def forward(self, x: Tensor) -> Tensor:
        s, p = self._setting(), self.p.to(x.dtype)
        # [batch, units] (a recurrent gate's input): p broadcasts as it is, without a view
        # (one autograd node less a call); otherwise along dim 1.
        p = p if x.dim() == 2 and p.dim() == 1 else channel_view(p, x)
        if self.noise_on() and s.c != 0.0:
            # On CUDA (opt-in) one Triton kernel draws xi and computes phi; backward redraws it.
            if self.use_fused and fused.hard_available(x, p, s.kind):
                return fused.FusedNoisyHardFn.apply(x, p, s, self.generator)
            return _NoisyHardFn.apply(x, p, s, self.generator)
        # Eval (or no noise): the expectation over xi, not h(x).
        mix, d, sig, _ = _parts(x, p, s)
        mean = noise.mean_of(s.kind)
        return mix + d * sig * mean if mean else mix

    def expectation(self, x: Tensor) -> Tensor:
        """E_xi[phi(x, xi)] at the current noise scale (the eval output)."""
        was = self.training
        try:
            return self.train(False)(x)
        finally:
            self.train(was)

    def effective_noise_std(self, x: Tensor) -> Tensor:
        s, p = self._setting(), channel_view(self.p.detach().to(x.dtype), x)
        _, d, sig, _ = _parts(x.detach(), p, s)
        return d.abs() * sig * noise.std_of(s.kind)

    def saturation_mask(self, x: Tensor) -> Tensor:
        return self.spec.saturated(x)


# The paper's two laws, by its names: xi ~ N(0, 1) (NAN) or |N(0, 1)| (NAH).
_LAWS = noise.spellings("normal", "half_normal")


class _Defaults(NamedTuple):
    """A unit's defaults, written once: its constructor's and its catalogue's."""

    alpha: float
    c: float
    noise: str


TANH_DEFAULTS = _Defaults(alpha=1.15, c=0.5, noise="normal")
SIGMOID_DEFAULTS = _Defaults(alpha=1.1, c=0.15, noise="half_normal")  # as the authors' code


def _params(defaults: _Defaults) -> tuple[Param, ...]:
    alpha, c, kind = defaults
    return (
        Param("alpha", "float", alpha, 0.0, 10.0, description="mix of h and u; >1 pushes noise"),
        Param("c", "float", c, 0.0, 100.0, description="noise scale c (annealed)"),
        Param("noise", "str", kind, choices=_LAWS, description="NAN / NAH"),
        Param("num_units", "int", None, 1, None, description="size of learned p (None: scalar)"),
    )


_FORMULA = "phi = alpha*h + (1-alpha)*u + d*sigma*xi, sigma = c*(sigmoid(p*(h-u)) - 1/2)^2"


@register(
    "noisy_hard_tanh",
    aliases=("nan_tanh", "noisy_tanh"),  # NAH: noise="half_normal"
    description=f"Noisy hard tanh: {_FORMULA}, h = clip(x,-1,1), u = x; eval: E over xi.",
    reference=_REF,
    params=_params(TANH_DEFAULTS),
    noisy=True,
)
class NoisyHardTanh(_NoisyHard):
    """Noisy hard tanh (NAN by default)."""

    spec = HARD_TANH

    def __init__(
        self,
        alpha: float = TANH_DEFAULTS.alpha,
        c: float = TANH_DEFAULTS.c,
        noise: str = TANH_DEFAULTS.noise,
        num_units: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(alpha, c, noise, num_units, generator)


@register(
    "noisy_hard_sigmoid",
    aliases=("nah_sigmoid", "noisy_sigmoid"),  # NAN: noise="normal"
    description=f"Noisy hard sigmoid: {_FORMULA}, h = clip(x/4+1/2,0,1), u = x/4+1/2; eval: E.",
    reference=_REF,
    params=_params(SIGMOID_DEFAULTS),
    noisy=True,
)
class NoisyHardSigmoid(_NoisyHard):
    """Noisy hard sigmoid (NAH by default, as in the authors' code)."""

    spec = HARD_SIGMOID

    def __init__(
        self,
        alpha: float = SIGMOID_DEFAULTS.alpha,
        c: float = SIGMOID_DEFAULTS.c,
        noise: str = SIGMOID_DEFAULTS.noise,
        num_units: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(alpha, c, noise, num_units, generator)
