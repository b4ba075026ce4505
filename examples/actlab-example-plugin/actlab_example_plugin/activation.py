"""noisy_softplus: softplus of a noisy pre-activation, registered like a built-in unit."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from activations import NoisyActivation, Param, ParamError, noise, register


@register(
    "noisy_softplus",
    description=(
        "Train: softplus(beta * (x + sigma * s * xi)) / beta, xi ~ N(0, 1) per element, "
        "s = noise_scale; eval: softplus(beta * x) / beta."
    ),
    reference="actlab example plugin (examples/actlab-example-plugin)",
    params=(
        Param("sigma", "float", 0.5, 0.0, 10.0, description="std of the input noise"),
        Param("beta", "float", 1.0, 0.0, 100.0, min_open=True, description="sharpness"),
    ),
    noisy=True,
)
class NoisySoftplus(NoisyActivation):
    """Softplus whose input carries Gaussian noise while training."""

    def __init__(
        self, sigma: float = 0.5, beta: float = 1.0, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(generator)
        self.check_params({"sigma": sigma, "beta": beta})
        self.sigma, self.beta = sigma, beta

    @staticmethod
    def check_params(params: dict[str, Any]) -> None:
        """Checks the Param ranges cannot express (none needed here beyond beta > 0)."""
        if params["beta"] <= 0:
            raise ParamError("beta", "noisy_softplus: param 'beta' must be > 0")

    def effective_noise_std(self, x: Tensor) -> float:
        return self.sigma * self.noise_scale

    def forward(self, x: Tensor) -> Tensor:
        std = self.effective_noise_std(x)
        if self.noise_on() and std > 0.0:
            x = x + noise.sample("gaussian", x, self.generator, scale=std)
        return F.softplus(x, beta=self.beta)
