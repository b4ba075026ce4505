"""Name -> registration, one registry per kind, and the one function listing the names.

Datasets and models register a spec class (service/spec/base.py); activations register
with `activations.register`, noise laws with `activations.noise.register`, schedule kinds
with `activations.schedules.register`.
Validation, limits, the catalogue, sweeps and the engine all read these registries.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Annotated, Any, Generic, Literal, TypeVar, Union

from pydantic import BaseModel, Field, ValidationError

import activations
from activations import schedules

Kind = Literal["activation", "schedule", "dataset", "model"]
S = TypeVar("S", bound=BaseModel)


class SpecRegistry(Generic[S]):
    """Spec classes of one kind by the value of their discriminator field (`name`, `arch`)."""

    def __init__(
        self, kind: Kind, key: str, base: type[S], check: Callable[[S], object] = id
    ) -> None:
        self.kind, self.key, self.base, self._check = kind, key, base, check
        self._classes: dict[str, type[S]] = {}
        self._sources: dict[str, str] = {}

    def register(self, cls: type[S], *, source: str = "builtin") -> type[S]:
        """Add `cls` under the literal value of its key field; usable as a class decorator.

        Refuses a class that is not a spec of this kind, a name already taken, a class
        whose defaults do not validate (a plugin declaring bad parameters), and one whose
        default instance fails `check` (e.g. a dataset without its input shape).
        """
        name = self.name_of(cls)
        if name in self._classes:
            taken = self._sources[name]
            raise ValueError(f"{self.kind} {name!r} is already registered (by {taken})")
        # pydantic does not check defaults: pass each one in, so a bad one is refused here.
        given = {
            field: info.get_default(call_default_factory=True)
            for field, info in cls.model_fields.items()
            if not info.is_required()
        }
        try:
            default = cls.model_validate({**given, self.key: name})
        except ValidationError as exc:
            raise ValueError(f"{self.kind} {name!r}: its defaults do not validate: {exc}") from None
        try:
            self._check(default)
        except Exception as exc:
            raise ValueError(f"{self.kind} {name!r} is incomplete: {exc!r}") from None
        self._classes[name] = cls
        self._sources[name] = source
        return cls

    def name_of(self, cls: Any) -> str:
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise TypeError(f"a {self.kind} must be a subclass of {self.base.__qualname__}")
        field = cls.model_fields.get(self.key)
        values = typing.get_args(field.annotation) if field is not None else ()
        if len(values) != 1 or not isinstance(values[0], str):
            raise TypeError(f"{cls.__qualname__}.{self.key} must be Literal['<one name>']")
        return values[0]

    def names(self) -> list[str]:
        return list(self._classes)

    def classes(self) -> list[type[S]]:
        return list(self._classes.values())

    def get(self, name: str) -> type[S]:
        return self._classes[name]

    def by_name(self) -> dict[str, type[S]]:
        return dict(self._classes)

    def union(self) -> Any:
        """Every registered class as one union discriminated by the key: what validation and
        the OpenAPI schema use. Build it after the plugins have registered."""
        return Annotated[Union[tuple(self._classes.values())], Field(discriminator=self.key)]

    def source(self, name: str) -> str:
        """ "builtin", or the distribution (name and version) of the plugin that added it."""
        return self._sources[name]


def names(kind: Kind) -> list[str]:
    """The registered names of one kind, plugins included: the one list every listing uses."""
    if kind == "activation":
        return activations.names()
    if kind == "schedule":
        return schedules.names()
    from service.spec import datasets, models

    registry: SpecRegistry[Any] = datasets.DATASETS if kind == "dataset" else models.MODELS
    return registry.names()
