"""actlab activation units: registry, noisy units, noise schedules and diagnostics."""

# Importing the unit modules registers their classes.
from . import (
    deterministic,
    diagnostics,
    gulcehre,
    input_noise,
    noisy_relu,
    randomized,
    schedules,
)
from .base import Activation, NoisyActivation, noisy_modules, set_noise_scale
from .errors import ParamError, UnknownNameError
from .params import Param
from .registry import catalogue, create, get_activation, names, register, validate_params

create_activation = create

__all__ = [
    "Activation",
    "NoisyActivation",
    "Param",
    "ParamError",
    "UnknownNameError",
    "catalogue",
    "create",
    "create_activation",
    "deterministic",
    "diagnostics",
    "get_activation",
    "gulcehre",
    "input_noise",
    "names",
    "noisy_modules",
    "noisy_relu",
    "randomized",
    "register",
    "schedules",
    "set_noise_scale",
    "validate_params",
]
