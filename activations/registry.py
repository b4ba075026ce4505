"""Name -> activation class registry (timm's create_act, with specs and aliases)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from .errors import ParamError
from .names import Registry
from .params import Param, validate

M = TypeVar("M", bound=type[nn.Module])


@dataclass(frozen=True)
class Entry:
    """A registered activation: its class and the metadata the catalogue shows."""

    name: str
    cls: type[nn.Module]
    aliases: tuple[str, ...]
    description: str
    reference: str
    params: tuple[Param, ...]
    noisy: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable catalogue row."""
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "description": self.description,
            "noisy": self.noisy,
            "reference": self.reference,
            "params": [p.as_dict() for p in self.params],
        }


_REGISTRY: Registry[Entry] = Registry("activation", fold=True)  # "Leaky-ReLU" is leaky_relu


def register(
    name: str,
    *,
    aliases: Iterable[str] = (),
    description: str,
    reference: str,
    params: Iterable[Param] = (),
    noisy: bool = False,
    override: bool = False,
) -> Callable[[M], M]:
    """Class decorator adding an activation under ``name``; refuses silent overwrite."""
    key, alias_keys = _REGISTRY.key(name), tuple(_REGISTRY.key(a) for a in aliases)

    def decorate(cls: M) -> M:
        entry = Entry(key, cls, alias_keys, description, reference, tuple(params), noisy)
        _REGISTRY.add(key, entry, aliases=alias_keys, replace=override)
        return cls

    return decorate


def unregister(name: str) -> None:
    """Remove an activation and its aliases (a plugin that failed after registering)."""
    _REGISTRY.remove(name)


def _entry(name: str) -> Entry:
    return _REGISTRY.get(name)


def names() -> list[str]:
    """Sorted canonical activation names."""
    return sorted(_REGISTRY.names())


def catalogue() -> list[dict[str, Any]]:
    """JSON-serialisable description of every activation, sorted by name."""
    return [_REGISTRY.get(n).as_dict() for n in names()]


def validate_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Return normalised params (defaults filled) for ``name`` or raise ParamError."""
    entry = _entry(name)
    clean = validate(entry.name, entry.params, params)
    check = getattr(entry.cls, "check_params", None)
    if check is not None:
        check(clean)
    return clean


def create(name: str, **params: Any) -> nn.Module:
    """Build activation ``name``; noisy units also accept ``generator=``."""
    entry = _entry(name)
    generator = params.pop("generator", None)
    clean = validate_params(entry.name, params)
    if generator is None:
        return entry.cls(**clean)
    if not entry.noisy:
        raise ParamError("generator", f"{entry.name}: 'generator' only applies to noisy units")
    if not isinstance(generator, torch.Generator):
        raise ParamError("generator", f"{entry.name}: param 'generator' must be a torch.Generator")
    return entry.cls(**clean, generator=generator)


def get_activation(name_or_class: str | type[nn.Module] | None) -> type[nn.Module]:
    """timm-style lookup: name -> class, class -> itself, None -> nn.Identity."""
    if name_or_class is None:
        return nn.Identity
    if isinstance(name_or_class, str):
        return _entry(name_or_class).cls
    if isinstance(name_or_class, type) and issubclass(name_or_class, nn.Module):
        return name_or_class
    raise TypeError(f"expected a name, an nn.Module class or None, got {name_or_class!r}")


def entry(name: str) -> Entry:
    """The registry entry for ``name`` (aliases resolved)."""
    return _entry(name)


def param_names(name: str) -> frozenset[str]:
    """The parameter names ``name`` takes (aliases resolved); UnknownNameError if unknown."""
    return frozenset(p.name for p in _entry(name).params)
