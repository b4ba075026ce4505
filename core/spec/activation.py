"""Activation and schedule specs, validated against the `activations` package's registries."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from torch import nn

import activations
from activations import schedules
from activations.errors import ParamError
from core.spec import plugins
from core.spec.numbers import Int

# Parameters that mean "how many units/channels this layer has": the builder sets them.
SIZE_PARAMS = frozenset({"num_units", "num_channels", "num_features", "num_parameters"})


class ActivationSpec(BaseModel):
    """A registered activation unit and its parameters."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(description="A name from GET /v1/activations.", examples=["noisy_relu"])
    params: dict[str, Any] = Field(default_factory=dict, examples=[{"sigma": 0.3}])

    @field_validator("name")
    @classmethod
    def _known_name(cls, name: str) -> str:
        # The schema's enum: a canonical name or an alias, spelled exactly (the Python API's
        # looser matching, "Leaky-ReLU", is not part of the HTTP contract). Aliases are
        # normalised so stored specs, filters and sweeps see one name per unit.
        try:
            entry = activations.registry.entry(name)
        except (KeyError, ValueError) as exc:
            raise ValueError(_message(exc)) from None
        if name != entry.name and name not in entry.aliases:
            raise ValueError(str(activations.UnknownNameError(name, activations.names())))
        return entry.name

    @model_validator(mode="after")
    def _valid_params(self) -> ActivationSpec:
        try:
            self.params = activations.validate_params(self.name, self.params)
        except ParamError as exc:
            raise _at_param(type(self).__name__, exc, self.params) from None
        except (KeyError, ValueError) as exc:
            raise ValueError(_message(exc)) from None
        return self

    def build(self, width: int) -> nn.Module:
        """The unit for a layer of `width`; unset size parameters (SIZE_PARAMS) get `width`."""
        params: dict[str, Any] = dict(self.params)
        for key in SIZE_PARAMS & activations.registry.param_names(self.name):
            if params.get(key) is None:
                params[key] = width
            elif params[key] not in (1, width):
                # A size that is neither scalar (1) nor the layer's width cannot broadcast.
                raise ParamError(
                    key, f"{self.name}: param {key!r} must be 1 or the layer width {width}"
                )
        return activations.create(self.name, **params)


class ScheduleSpec(BaseModel):
    """A multiplier over training: the noise schedule scales every noisy unit's noise level."""

    model_config = ConfigDict(extra="forbid", strict=True)

    kind: str = Field("constant", description="A kind from GET /v1/schedules.", examples=["cosine"])
    start: float = Field(1.0, ge=0.0, le=1e6)
    end: float = Field(0.0, ge=0.0, le=1e6)
    unit: Literal["step", "epoch"] = "step"
    warmup: Int = Field(
        0, ge=0, le=2**31 - 1, description="Units of linear ramp from 0 to `start`."
    )
    params: dict[str, Any] = Field(default_factory=dict, description="Kind-specific parameters.")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        try:
            schedules.validate_params(kind, {"total": 1})
        except activations.UnknownNameError as exc:
            raise ValueError(str(exc)) from None
        except (KeyError, ValueError):
            pass  # parameters are checked with the whole schedule, below
        return kind

    @model_validator(mode="after")
    def _valid_params(self) -> ScheduleSpec:
        # `params` holds the kind's own parameters only; start, end and warmup are fields.
        allowed = sorted(p.name for p in schedules.extra_params(self.kind))
        for key in self.params:
            if key not in allowed:
                valid = ", ".join(allowed) or "(none)"
                message = f"{self.kind}: unknown param {key!r}; valid params: {valid}"
                raise _at_param(type(self).__name__, ParamError(key, message), self.params)
        try:
            schedules.validate_params(self.kind, self.build_params(total=self.warmup + 1))
        except (KeyError, ValueError) as exc:
            raise ValueError(_message(exc)) from None
        return self

    def build_params(self, *, total: int) -> dict[str, Any]:
        """The keyword arguments for `activations.schedules.create` over a horizon of `total`."""
        return {
            "start": self.start,
            "end": self.end,
            "warmup": self.warmup,
            "total": total,
            **self.params,
        }


def _at_param(title: str, exc: ParamError, params: dict[str, Any]) -> ValidationError:
    """A validation error located at `params.<name>`, so a 422 names the leaf field."""
    detail = InitErrorDetails(
        type=PydanticCustomError("value_error", "{message}", {"message": str(exc)}),
        loc=("params", exc.param),
        input=params.get(exc.param),
    )
    return ValidationError.from_exception_data(title, [detail])


def _message(exc: Exception) -> str:
    # A bare KeyError's str() is the repr of its key; activations' own errors read well.
    if type(exc) is KeyError and exc.args:
        return f"unknown name {exc.args[0]!r}"
    return str(exc)


# Activation plugins register themselves with `activations.register` when imported.
plugins.load("activation")
