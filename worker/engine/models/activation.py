"""Building activation units from a spec, giving size-dependent units their layer width."""

from __future__ import annotations

from functools import cache
from typing import Any

from torch import nn

# Catalogue parameters that mean "how many units/channels this layer has".
SIZE_PARAMS = ("num_units", "num_channels", "num_features", "num_parameters")


@cache
def _param_names(name: str) -> frozenset[str]:
    import activations

    for row in activations.catalogue():
        if row["name"] == name:
            return frozenset(p["name"] for p in row.get("params", []))
    return frozenset()


def make_activation(spec: Any, width: int) -> nn.Module:
    """`activations.create(spec.name, **spec.params)`, with unset size params set to `width`."""
    import activations

    params: dict[str, Any] = dict(spec.params)
    for key in SIZE_PARAMS:
        if key not in _param_names(spec.name):
            continue
        if params.get(key) is None:
            params[key] = width
        elif params[key] not in (1, width):
            # A size that is neither scalar (1) nor the layer's width cannot broadcast.
            raise activations.ParamError(
                key, f"{spec.name}: param {key!r} must be 1 or the layer width {width}"
            )
    return activations.create(spec.name, **params)
