"""Declarative parameter specs and their validation, shared by units and schedules."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ParamError

_TYPES = ("float", "int", "bool", "str")


@dataclass(frozen=True)
class Param:
    """One constructor parameter: type, default, inclusive range or choices."""

    name: str
    type: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    description: str = ""
    # Open bounds (e.g. dropout p in (0, 1)); the catalogue keeps only min/max.
    min_open: bool = False
    max_open: bool = False
    required: bool = False

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"param {self.name!r}: type must be one of {_TYPES}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable description for the catalogue."""
        return {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "min": self.min,
            "max": self.max,
            # Open ends exclude the bound itself (e.g. gaussian_dropout p in [0, 1)).
            "min_open": self.min_open,
            "max_open": self.max_open,
            "required": self.required,
            "choices": list(self.choices) if self.choices is not None else None,
            "description": self.description,
        }

    def check(self, owner: str, value: Any) -> Any:
        """Return ``value`` coerced to this param's type, or raise ParamError."""
        if value is None:
            if self.required:
                raise ParamError(self.name, f"{owner}: param {self.name!r} is required")
            if self.default is not None:
                # null means "unset" only where unset is the default (e.g. num_channels).
                raise ParamError(self.name, f"{owner}: param {self.name!r} cannot be null")
            return None
        value = _coerce(owner, self, value)
        _check_range(owner, self, value)
        return value


def _coerce(owner: str, spec: Param, value: Any) -> Any:
    kind = spec.type
    where = f"{owner}: param {spec.name!r}"
    # bool is an int subclass: refuse it for numbers so `sigma=True` is caught.
    if kind == "bool":
        if not isinstance(value, bool):
            raise ParamError(spec.name, f"{where} must be a bool, got {type(value).__name__}")
        return value
    if kind == "int":
        # JSON Schema calls 1.0 an integer; so does the catalogue's schema of these params.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(spec.name, f"{where} must be an int, got {type(value).__name__}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError(spec.name, f"{where} must be a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise ParamError(spec.name, f"{where} must be finite, got {value}")
        return float(value)
    if not isinstance(value, str):
        raise ParamError(spec.name, f"{where} must be a string, got {type(value).__name__}")
    return value


def _check_range(owner: str, spec: Param, value: Any) -> None:
    where = f"{owner}: param {spec.name!r}"
    if spec.choices is not None and value not in spec.choices:
        raise ParamError(spec.name, f"{where} must be one of {list(spec.choices)}, got {value!r}")
    if spec.type not in ("int", "float"):
        return
    lo_bad = spec.min is not None and (value < spec.min or (spec.min_open and value == spec.min))
    hi_bad = spec.max is not None and (value > spec.max or (spec.max_open and value == spec.max))
    if lo_bad or hi_bad:
        lo = "(" if spec.min_open else "["
        hi = ")" if spec.max_open else "]"
        raise ParamError(
            spec.name, f"{where} must be in {lo}{spec.min}, {spec.max}{hi}, got {value}"
        )


def validate(owner: str, specs: Sequence[Param], params: Mapping[str, Any]) -> dict[str, Any]:
    """Normalise ``params`` against ``specs``: fill defaults, coerce, range-check."""
    by_name = {p.name: p for p in specs}
    for key in params:
        if key not in by_name:
            valid = ", ".join(sorted(by_name)) or "(none)"
            raise ParamError(key, f"{owner}: unknown param {key!r}; valid params: {valid}")
    return {p.name: p.check(owner, params.get(p.name, p.default)) for p in specs}
