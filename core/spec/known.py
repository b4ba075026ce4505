"""What this process knows by name: the registered names of each kind (plugins included),
and whether a stored spec names only what is registered here.

It sits above the registrations (core/spec/datasets.py, models.py, activations'), so the
registries below it never import back.
"""

from __future__ import annotations

from typing import Any

import activations
from activations import schedules
from core.spec.datasets import DATASETS
from core.spec.models import MODELS
from core.spec.plugins import GROUPS
from core.spec.registry import Kind


def names(kind: Kind) -> list[str]:
    """The registered names of one kind, plugins included: the one list every listing uses."""
    if kind == "activation":
        return activations.names()
    if kind == "schedule":
        return schedules.names()
    return DATASETS.names() if kind == "dataset" else MODELS.names()


class MissingPlugin(LookupError):
    """A stored spec names something this process has no registration for."""

    def __init__(self, missing: list[tuple[str, str]]) -> None:
        self.missing = missing
        named = "; ".join(
            f"{kind} {name!r} (entry point {name!r} in group {GROUPS[kind]!r})"
            for kind, name in missing
        )
        super().__init__(
            f"not registered in this process: {named}. Install the plugin that provides it "
            "here (docs/extending.md), then retry the experiment"
        )


def require(spec: Any) -> None:
    """Raise MissingPlugin naming each activation, dataset or model of the raw spec `spec`
    that no built-in or loaded plugin registers here (a worker without the package)."""
    missing = [(kind, name) for kind, name in _named(spec) if not _known(kind, name, names)]
    if missing:
        raise MissingPlugin(missing)


def _named(spec: Any) -> list[tuple[str, str]]:
    def get(*path: str) -> Any:
        node = spec
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    found = [
        ("activation", get("activation", "name")),
        ("activation", get("model", "gate_activation", "name")),
        ("dataset", get("dataset", "name")),
        ("model", get("model", "arch")),
    ]
    return [(kind, name) for kind, name in found if isinstance(name, str)]


def _known(kind: str, name: str, names: Any) -> bool:
    if kind == "activation":
        try:
            activations.registry.entry(name)
        except activations.UnknownNameError:
            return False
        return True
    return name in names(kind)
