"""Errors raised by the activations registry and parameter validation."""

from __future__ import annotations

from typing import Any


class UnknownNameError(KeyError, ValueError):
    """An activation or schedule name that is not registered."""

    def __init__(self, name: str, valid: list[str], *, what: str = "activation") -> None:
        super().__init__(name)
        self.name = name
        self.valid = list(valid)
        self.what = what

    def __str__(self) -> str:
        # KeyError's str() would repr() the message; callers show this text to users.
        return f"unknown {self.what} {self.name!r}; valid: {', '.join(self.valid)}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep the attributes across pickling (Celery ships exceptions between processes).
        return (_unknown_name, (self.name, self.valid, self.what))


class ParamError(ValueError):
    """A bad parameter: unknown, wrong type or out of range; ``.param`` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.param, str(self)))


def _unknown_name(name: str, valid: list[str], what: str) -> UnknownNameError:
    return UnknownNameError(name, valid, what=what)
