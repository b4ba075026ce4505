"""Name -> registration, one registry per kind, and the one function listing the names.

Datasets and models register a spec class (core/spec/base.py); activations register
with `activations.register`, noise laws with `activations.noise.register`, schedule kinds
with `activations.schedules.register`. All of them keep their entries in the one registry
mechanism, `activations.names.Registry` (one lookup with aliases, one error listing the
valid names); a spec registry adds what a spec class needs (its defaults validated, its
discriminated union, the plugin that added it).
Validation, limits, the catalogue, sweeps and the engine all read these registries.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Annotated, Any, Generic, Literal, TypeVar, Union

from pydantic import BaseModel, Field, ValidationError

from activations.names import Registry

Kind = Literal["activation", "schedule", "dataset", "model"]
S = TypeVar("S", bound=BaseModel)


class SpecRegistry(Generic[S]):
    """Spec classes of one kind by the value of their discriminator field (`name`, `arch`)."""

    def __init__(
        self, kind: Kind, key: str, base: type[S], check: Callable[[S], object] = id
    ) -> None:
        self.kind, self.key, self.base, self._check = kind, key, base, check
        self._classes: Registry[type[S]] = Registry(kind)
        self._sources: dict[str, str] = {}

    def register(self, cls: type[S], *, source: str = "builtin") -> type[S]:
        """Add `cls` under the literal value of its key field; usable as a class decorator.

        Refuses a class that is not a spec of this kind, a name already taken, a class
        whose defaults do not validate (a plugin declaring bad parameters), and one whose
        default instance fails `check` (e.g. a dataset without its input shape).
        """
        name = self.name_of(cls)
        if name in self._classes:
            taken = self._sources[self._classes.canonical(name)]
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
        self._classes.add(name, cls)
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
        return self._classes.names()

    def classes(self) -> list[type[S]]:
        return self._classes.entries()

    def get(self, name: str) -> type[S]:
        """The class registered as `name`; UnknownNameError (a KeyError) listing the names."""
        return self._classes.get(name)

    def by_name(self) -> dict[str, type[S]]:
        return dict(zip(self._classes.names(), self._classes.entries(), strict=True))

    def union(self) -> Any:
        """Every registered class as one union discriminated by the key: what validation and
        the OpenAPI schema use. Build it after the plugins have registered."""
        return Annotated[Union[tuple(self._classes.entries())], Field(discriminator=self.key)]

    def source(self, name: str) -> str:
        """ "builtin", or the distribution (name and version) of the plugin that added it."""
        return self._sources[name]
