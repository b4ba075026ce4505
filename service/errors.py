"""One error hierarchy, rendered as application/problem+json (RFC 9457)."""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://actlab.dev/problems/"
PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """Base of every error the API returns on purpose."""

    status: int = 500
    type: str = "internal"
    title: str = "Internal error"
    media_type: str = PROBLEM_JSON

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
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


class NotFound(ProblemError):
    status, type, title = 404, "not-found", "Not found"


class Forbidden(ProblemError):
    status, type, title = 403, "forbidden", "Forbidden"


class InvalidSpec(ProblemError):
    status, type, title = 422, "invalid-request", "Invalid request"


def not_finite(path: str, at: float, value: float) -> InvalidSpec:
    """A schedule whose value leaves the float range (a growth rate over a long horizon)."""
    message = f"{path}: the value is {value} at {at:g}, past the float range; lower its rate"
    return InvalidSpec(message, errors=[{"path": path, "message": message}])


class Conflict(ProblemError):
    status, type, title = 409, "conflict", "Conflict"


class Unavailable(ProblemError):
    status, type, title = 503, "unavailable", "Service unavailable"


class InsufficientStorage(ProblemError):
    """The database refused a write for lack of space: the server's fault, and one a
    retry after the operator frees space fixes, so not a 500."""

    status, type, title = 507, "insufficient-storage", "Insufficient storage"


class LimitExceeded(ProblemError):
    """A request over a configured limit; names the limit and the setting that raises it."""

    status, type, title = 422, "limit-exceeded", "Limit exceeded"

    def __init__(
        self, detail: str, *, setting: str, limit: int, status: int = 422, **extra: Any
    ) -> None:
        super().__init__(
            f"{detail} (limit {limit}; raise it with {setting})",
            setting=setting,
            limit=limit,
            **extra,
        )
        self.status = status
