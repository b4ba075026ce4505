"""One error hierarchy, rendered as application/problem+json (RFC 9457)."""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://actlab.dev/problems/"


class ActlabError(Exception):
    """Base of every error the API returns on purpose."""

    status: int = 500
    type: str = "internal"
    title: str = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class NotFound(ActlabError):
    status, type, title = 404, "not-found", "Not found"


class InvalidSpec(ActlabError):
    status, type, title = 422, "invalid-request", "Invalid request"


class Conflict(ActlabError):
    status, type, title = 409, "conflict", "Conflict"


class Unavailable(ActlabError):
    status, type, title = 503, "unavailable", "Service unavailable"
