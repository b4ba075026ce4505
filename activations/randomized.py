"""Other randomized units: RReLU and Gaussian dropout."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from . import noise
from .base import NoisyActivation
from .errors import ParamError
from .params import Param
from .registry import register


@register(
    "rrelu",
    aliases=("randomized_relu",),
    description=(
        "Train: x for x >= 0, a*x otherwise, a ~ U(m - s*w, m + s*w) per element with "
        "m = (lower+upper)/2, w = (upper-lower)/2, s = noise_scale; eval: a = m."
    ),
    reference="Xu et al. 2015",
    params=(
        Param("lower", "float", 1.0 / 8.0, 0.0, 1.0, description="lowest slope"),
        Param("upper", "float", 1.0 / 3.0, 0.0, 1.0, description="highest slope"),
    ),
    noisy=True,
)
class RReLU(NoisyActivation):
    """Randomized leaky ReLU; the base noise level is the slope range upper - lower."""

    noise_side = "output"  # the random slope times x: what y carries

    def __init__(
        self,
        lower: float = 1.0 / 8.0,
        upper: float = 1.0 / 3.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(generator)
        self.check_params({"lower": lower, "upper": upper})
        self.lower, self.upper = lower, upper

    @staticmethod
    def check_params(params: dict[str, Any]) -> None:
        """Refuse an empty slope range."""
        if params["lower"] > params["upper"]:
            raise ParamError("upper", "rrelu: param 'upper' must be >= param 'lower'")

    def forward(self, x: Tensor) -> Tensor:
        mid = (self.lower + self.upper) / 2
        half = (self.upper - self.lower) / 2 * self.noise_scale
        if not self.noise_on() or half == 0.0:
            return F.leaky_relu(x, mid)
        # U(-sqrt3, sqrt3) has unit variance, so this is U(mid - half, mid + half).
        slope = noise.sample("uniform", x, self.generator, scale=half / math.sqrt(3.0)).add_(mid)
        return torch.where(x >= 0, x, x * slope)

    def effective_noise_std(self, x: Tensor) -> Tensor:
        width = (self.upper - self.lower) * self.noise_scale
        return (-x.detach()).clamp(min=0) * (width / math.sqrt(12.0))


@register(
    "gaussian_dropout",
    description="Train: x * m, m ~ N(1, p/(1-p)) (std scaled by noise_scale); eval: x.",
    reference="Srivastava et al. 2014; Wang & Manning 2013",
    params=(
        Param("p", "float", 0.5, 0.0, 1.0, min_open=True, max_open=True, description="in (0,1)"),
    ),
    noisy=True,
)
class GaussianDropout(NoisyActivation):
    """Multiplicative Gaussian noise, the continuous analogue of dropout."""

    noise_side = "output"  # x times the noise: what y carries

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        self.p = p

    def _std(self) -> float:
        return math.sqrt(self.p / (1.0 - self.p)) * self.noise_scale

    def forward(self, x: Tensor) -> Tensor:
        if not self.noise_on():
            return x
        m = noise.sample("gaussian", x, self.generator, scale=self._std()).add_(1.0)
        return x * m

    def effective_noise_std(self, x: Tensor) -> Tensor:
        return x.detach().abs() * self._std()
