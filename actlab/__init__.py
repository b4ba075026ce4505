"""actlab's Python client: `actlab.Client(url, api_key)` (httpx + pydantic only).

import actlab
client = actlab.Client()  # ACTLAB_URL, ACTLAB_API_KEY
exp = client.experiments.submit("spec.yaml", overrides={"training.epochs": 5})
client.experiments.wait(exp.id, progress=True)
df = client.metrics(exp.id, names="val/acc")
"""

from __future__ import annotations

from actlab.client import Client
from actlab.errors import (
    ActlabError,
    ApiError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    InvalidRequest,
    LimitExceeded,
    NotFound,
    PayloadTooLarge,
    ServerError,
    TooManyRequests,
    Unauthorized,
)
from actlab.models import Experiment, StreamEvent, Sweep, SweepSummary

__all__ = [
    "ActlabError",
    "ApiError",
    "BadRequest",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Experiment",
    "InvalidRequest",
    "LimitExceeded",
    "NotFound",
    "PayloadTooLarge",
    "ServerError",
    "StreamEvent",
    "Sweep",
    "SweepSummary",
    "TooManyRequests",
    "Unauthorized",
]
