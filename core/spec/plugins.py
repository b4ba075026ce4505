"""Plugins: activations, datasets and models from installed distributions' entry points.

Groups `actlab.activations`, `actlab.datasets` and `actlab.models`; the entry point's name
is the name it registers (docs/extending.md). An activation entry point names a module or
class that registers itself with `activations.register`; a dataset or model entry point
names its spec class, which is registered here. A plugin that fails to import, collides
with a registered name or declares bad parameters is skipped and reported: logged at
start-up, listed by `problems()` (GET /healthz counts them, the catalogue shows them).

Loading a plugin is all or nothing: whatever it registered before failing (units, noise
laws, schedule kinds, specs) is taken back, so no half-loaded plugin's unit is validated,
trained or listed as built in. Any exception at import counts as a failure, SystemExit and
KeyboardInterrupt included: a plugin calling sys.exit() must not stop `actlab api` or
`actlab worker`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

import activations
from activations.errors import ParamError
from activations.names import all_or_nothing

log = logging.getLogger("actlab.plugins")

GROUPS = {
    "activation": "actlab.activations",
    "dataset": "actlab.datasets",
    "model": "actlab.models",
}


@dataclass(frozen=True)
class Plugin:
    """One entry point that was loaded, or that failed (then `error` says why)."""

    kind: str
    name: str
    group: str
    value: str
    distribution: str
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_LOADED: dict[str, list[Plugin]] = {}


def load(kind: str, registry: Any = None) -> list[Plugin]:
    """Load the entry points of `kind` once (registering datasets and models in `registry`)."""
    if kind not in _LOADED:
        _LOADED[kind] = [_load_one(kind, ep, registry) for ep in _entry_points(GROUPS[kind])]
    return _LOADED[kind]


def loaded() -> list[Plugin]:
    """Every plugin entry point seen so far, good and bad."""
    return [p for plugins in _LOADED.values() for p in plugins]


def problems() -> list[dict[str, Any]]:
    """The plugins that were skipped, and why."""
    return [p.as_dict() for p in loaded() if p.error is not None]


def source(kind: str, name: str) -> str:
    """ "builtin", or the distribution that provides plugin `name`."""
    for p in _LOADED.get(kind, []):
        if p.name == name and p.error is None:
            return p.distribution
    return "builtin"


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=group), key=lambda ep: ep.name)


def _distribution(ep: metadata.EntryPoint) -> str:
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"


def _load_one(kind: str, ep: metadata.EntryPoint, registry: Any) -> Plugin:
    plugin = Plugin(kind, ep.name, ep.group, ep.value, _distribution(ep))
    try:
        with all_or_nothing():
            obj = ep.load()
            if kind == "activation":
                _check_activation(ep.name)
            else:
                _register(registry, obj, ep.name, plugin.distribution)
    # BaseException: a plugin's sys.exit() or KeyboardInterrupt at import is a broken
    # plugin too, not a reason for the API or a worker to stop.
    except BaseException as exc:
        error = _describe(exc)
        log.error(
            "plugin %s %r from %s (%s = %s) skipped: %s",
            kind,
            ep.name,
            plugin.distribution,
            ep.group,
            ep.value,
            error,
        )
        return Plugin(**{**plugin.as_dict(), "error": error})
    log.info("plugin %s %r loaded from %s", kind, ep.name, plugin.distribution)
    return plugin


def _describe(exc: BaseException) -> str:
    """The exception's type and message ("SystemExit: 3"; the type alone without one)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_activation(name: str) -> None:
    """The module registered `name`, and its declared defaults validate."""
    try:
        entry = activations.registry.entry(name)
    except activations.UnknownNameError:
        raise LookupError(f"importing it registered no activation named {name!r}") from None
    try:
        activations.validate_params(entry.name, {})
    except ParamError as exc:  # all_or_nothing takes the registration back
        raise ValueError(f"bad parameters: {exc}") from None


def _register(registry: Any, obj: Any, name: str, distribution: str) -> None:
    declared = registry.name_of(obj)
    if declared != name:
        raise ValueError(f"the entry point is named {name!r} but the class registers {declared!r}")
    registry.register(obj, source=distribution)
