"""Logging for every process: text for a terminal, JSON lines for a log pipeline.

Records about an experiment carry `experiment_id` (pass `extra={"experiment_id": ...}`),
so one experiment's story can be filtered out of many workers' logs.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

CONTEXT_FIELDS = ("experiment_id", "attempt", "worker")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in CONTEXT_FIELDS if hasattr(record, k)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(
            f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS if hasattr(record, k)
        )
        return f"{text} [{context}]" if context else text


def configure(level: str, fmt: str) -> None:
    """Route the root logger to stderr in the chosen format (idempotent)."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
