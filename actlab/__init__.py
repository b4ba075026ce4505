"""actlab's Python client: `actlab.Client(url, api_key)` (httpx + pydantic only).

import actlab
client = actlab.Client()  # ACTLAB_URL, ACTLAB_API_KEY
exp = client.experiments.submit("spec.yaml", overrides={"training.epochs": 5})
client.experiments.wait(exp.id, progress=True)
df = client.metrics(exp.id, names="val/acc")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actlab.client import Client
    from actlab.errors import (
        ActlabError,
        ApiError,
        BadRequest,
        Conflict,
        ConnectionFailed,
        InputError,
        InvalidRequest,
        LimitExceeded,
        MissingDependency,
        NotFound,
        PayloadTooLarge,
        ServerError,
        SpecError,
        TooManyRequests,
        Unauthorized,
    )
    from actlab.models import Experiment, StreamEvent, Sweep, SweepSummary

# Imported on first use, so that `actlab --help` does not pay for httpx and pydantic.
_WHERE = {
    "Client": "actlab.client",
    **{
        name: "actlab.errors"
        for name in (
            "ActlabError",
            "ApiError",
            "BadRequest",
            "Conflict",
            "ConnectionFailed",
            "InputError",
            "InvalidRequest",
            "LimitExceeded",
            "MissingDependency",
            "NotFound",
            "PayloadTooLarge",
            "ServerError",
            "SpecError",
            "TooManyRequests",
            "Unauthorized",
        )
    },
    **{n: "actlab.models" for n in ("Experiment", "StreamEvent", "Sweep", "SweepSummary")},
}
__all__ = [
    "ActlabError",
    "ApiError",
    "BadRequest",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Experiment",
    "InputError",
    "InvalidRequest",
    "LimitExceeded",
    "MissingDependency",
    "NotFound",
    "PayloadTooLarge",
    "ServerError",
    "SpecError",
    "StreamEvent",
    "Sweep",
    "SweepSummary",
    "TooManyRequests",
    "Unauthorized",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'actlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
