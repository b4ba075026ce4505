"""Input-noise variants from the authors' code: NANI h(x + c xi) and NANIS (saturated only)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from . import noise
from .base import HARD_SIGMOID, HARD_TANH, NoisyActivation
from .params import Param
from .registry import register

_REF = "Gulcehre et al. 2016 (arXiv 1603.00391), input-noise variants of the authors' code"
_EVAL = (
    "Eval: the deterministic h(x), as the authors' code does (E[h(x + c xi)] != h(x) in general)."
)


def _relu_saturated(x: Tensor) -> Tensor:
    # For ReLU the flat ("saturated") side is x < 0.
    return x < 0


class _InputNoise(NoisyActivation):
    """phi = h(x + c * noise_scale * xi * m(x)), xi ~ N(0, 1), m = 1 (NANI) or saturated (NANIS)."""

    hard: Callable[[Tensor], Tensor]
    saturated: Callable[[Tensor], Tensor]
    only_saturated = False

    def __init__(self, c: float, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        self.c = c

    def forward(self, x: Tensor) -> Tensor:
        level = self.c * self.noise_scale
        if not self.noise_on() or level == 0.0:
            return type(self).hard(x)
        xi = noise.sample("gaussian", x, self.generator, scale=level)
        if self.only_saturated:
            xi = xi * type(self).saturated(x)
        return type(self).hard(x + xi)

    def effective_noise_std(self, x: Tensor) -> Tensor | float:
        """Std of the noise added to the *input* (the unit's noise is input-side)."""
        level = self.c * self.noise_scale
        if not self.only_saturated:
            return level
        return type(self).saturated(x.detach()).to(x.dtype) * level


def _define(
    name: str,
    hard: Callable[[Tensor], Tensor],
    saturated: Callable[[Tensor], Tensor],
    *,
    only_saturated: bool,
    flat: bool,
) -> type[_InputNoise]:
    """Build and register one input-noise class (six near-identical classes otherwise)."""
    c = 0.25 if only_saturated else 0.05
    where = "only where x is saturated" if only_saturated else "everywhere"
    base = name.split("_", 1)[1]

    def __init__(self: _InputNoise, c: float = c, generator: torch.Generator | None = None) -> None:
        _InputNoise.__init__(self, c, generator)

    def saturation_mask(self: _InputNoise, x: Tensor) -> Tensor | None:
        return saturated(x) if flat else None

    attrs = {
        "__init__": __init__,
        "__doc__": f"{name}: {base}(x + c xi), noise {where}.",
        "hard": staticmethod(hard),
        "saturated": staticmethod(saturated),
        "only_saturated": only_saturated,
        "is_sparse_family": base == "relu",
        "saturation_mask": saturation_mask,
    }
    cls = type("".join(w.capitalize() for w in name.split("_")), (_InputNoise,), attrs)
    return register(
        name,
        description=f"Train: {base}(x + c*noise_scale*xi), xi ~ N(0,1) {where}. {_EVAL}",
        reference=_REF,
        params=(Param("c", "float", c, 0.0, 100.0, description="input noise std"),),
        noisy=True,
    )(cls)


NaniHardTanh = _define(
    "nani_hard_tanh", HARD_TANH.hard, HARD_TANH.saturated, only_saturated=False, flat=True
)
NaniHardSigmoid = _define(
    "nani_hard_sigmoid", HARD_SIGMOID.hard, HARD_SIGMOID.saturated, only_saturated=False, flat=True
)
NaniReLU = _define("nani_relu", torch.relu, _relu_saturated, only_saturated=False, flat=False)
NanisHardTanh = _define(
    "nanis_hard_tanh", HARD_TANH.hard, HARD_TANH.saturated, only_saturated=True, flat=True
)
NanisHardSigmoid = _define(
    "nanis_hard_sigmoid", HARD_SIGMOID.hard, HARD_SIGMOID.saturated, only_saturated=True, flat=True
)
NanisReLU = _define("nanis_relu", torch.relu, _relu_saturated, only_saturated=True, flat=False)
