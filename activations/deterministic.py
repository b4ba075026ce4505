"""Deterministic units: the torch classics plus the paper's hard sigmoid and hard tanh."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import HARD_SIGMOID, HARD_TANH, SIGMOID_SATURATION, TANH_SATURATION, Activation
from .params import Param
from .registry import register

_TORCH = "PyTorch torch.nn.functional"


@register("relu", description="max(0, x).", reference="Nair & Hinton 2010; Glorot et al. 2011")
class ReLU(Activation):
    """max(0, x)."""

    is_sparse_family = True

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x)


@register(
    "leaky_relu",
    aliases=("leakyrelu", "lrelu"),
    description="x for x >= 0, negative_slope * x otherwise.",
    reference="Maas et al. 2013",
    params=(Param("negative_slope", "float", 0.01, 0.0, 1.0, description="slope for x < 0"),),
)
class LeakyReLU(Activation):
    """Leaky ReLU with a fixed negative slope."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)


@register(
    "prelu",
    description="Leaky ReLU whose negative slope a is learned (per channel on dim 1).",
    reference="He et al. 2015",
    params=(
        Param("num_parameters", "int", 1, 1, None, description="1 or the number of channels"),
        Param("init", "float", 0.25, 0.0, 1.0, description="initial slope a"),
    ),
)
class PReLU(Activation):
    """Parametric ReLU."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((num_parameters,), init))

    def forward(self, x: Tensor) -> Tensor:
        return F.prelu(x, self.weight.to(x.dtype))


@register(
    "elu",
    description="x for x > 0, alpha * (exp(x) - 1) otherwise.",
    reference="Clevert et al. 2016",
    params=(Param("alpha", "float", 1.0, 0.0, 100.0, description="negative saturation"),),
)
class ELU(Activation):
    """Exponential linear unit."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)


@register("selu", description="Scaled ELU (self-normalising).", reference="Klambauer et al. 2017")
class SELU(Activation):
    """Scaled exponential linear unit."""

    def forward(self, x: Tensor) -> Tensor:
        return F.selu(x)


@register(
    "softplus",
    description="log(1 + exp(beta * x)) / beta.",
    reference="Dugas et al. 2001",
    params=(Param("beta", "float", 1.0, 0.0, 1000.0, min_open=True, description="sharpness"),),
)
class Softplus(Activation):
    """Smooth ReLU."""

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = beta

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, beta=self.beta)


@register(
    "gelu",
    description="x * Phi(x); approximate='tanh' uses the tanh formula.",
    reference="Hendrycks & Gimpel 2016",
    params=(Param("approximate", "str", "none", choices=("none", "tanh"), description="form"),),
)
class GELU(Activation):
    """Gaussian error linear unit."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, approximate=self.approximate)


@register(
    "silu",
    aliases=("swish",),
    description="x * sigmoid(x).",
    reference="Elfwing et al. 2018; Ramachandran et al. 2017",
)
class SiLU(Activation):
    """Sigmoid-weighted linear unit."""

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)


@register("sigmoid", aliases=("logistic",), description="1 / (1 + exp(-x)).", reference=_TORCH)
class Sigmoid(Activation):
    """Logistic sigmoid."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(x)

    def saturation_mask(self, x: Tensor) -> Tensor:
        """|x| > 4.3565: sigmoid'(x) under 5% of its maximum 1/4 (activations.base)."""
        return x.abs() > SIGMOID_SATURATION


@register("tanh", description="Hyperbolic tangent.", reference=_TORCH)
class Tanh(Activation):
    """Hyperbolic tangent."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x)

    def saturation_mask(self, x: Tensor) -> Tensor:
        """|x| > 2.1783: tanh'(x) under 5% of its maximum 1 (activations.base)."""
        return x.abs() > TANH_SATURATION


@register(
    "hard_sigmoid",
    aliases=("hardsigmoid",),
    description="clip(0.25 x + 0.5, 0, 1), saturated for |x| >= 2 (slope 1/4, not torch's 1/6).",
    reference="Gulcehre et al. 2016, arXiv 1603.00391",
)
class HardSigmoid(Activation):
    """The paper's hard sigmoid."""

    def forward(self, x: Tensor) -> Tensor:
        return HARD_SIGMOID.hard(x)

    def saturation_mask(self, x: Tensor) -> Tensor:
        return HARD_SIGMOID.saturated(x)


@register(
    "hard_tanh",
    aliases=("hardtanh",),
    description="clip(x, -1, 1), saturated for |x| >= 1.",
    reference="Gulcehre et al. 2016, arXiv 1603.00391",
)
class HardTanh(Activation):
    """Hard tanh."""

    def forward(self, x: Tensor) -> Tensor:
        return HARD_TANH.hard(x)

    def saturation_mask(self, x: Tensor) -> Tensor:
        return HARD_TANH.saturated(x)
