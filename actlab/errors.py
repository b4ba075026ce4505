"""problem+json errors as typed exceptions that carry the field path and the setting."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx


class ActlabError(Exception):
    """Base of every error the client raises."""


class ConnectionFailed(ActlabError):
    """The server could not be reached (wrong URL or port, or it is not running)."""


class InputError(ActlabError, ValueError):
    """Something wrong before any request is sent (a spec file, an override, a metric name):
    the message says what and where in one line, so the CLI prints it without a traceback.
    A ValueError too, so callers that caught ValueError from `specs` still catch it."""


class SpecError(InputError):
    """A spec or sweep document that cannot be read: missing, unparsable (file, line and
    column), a duplicate key, a tag or alias expansion refused, or a malformed override."""


class MissingDependency(ActlabError, ImportError):
    """An optional dependency is not installed; the message names the extra that adds it."""


class ApiError(ActlabError):
    """A problem+json answer: `status`, `type`, `title`, `detail`, and each invalid field."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.type: str = str(problem.get("type", "")).rsplit("/", 1)[-1]
        self.title: str = str(problem.get("title", "HTTP error"))
        self.detail: str = str(problem.get("detail", ""))
        self.errors: list[dict[str, Any]] = list(problem.get("errors") or [])
        self.setting: str | None = problem.get("setting")
        self.limit: int | None = problem.get("limit")
        super().__init__(f"{status} {self.title}: {self.detail}")

    @property
    def field(self) -> str | None:
        """The first invalid field's dotted path (e.g. `training.epochs`), if any."""
        return self.errors[0].get("path") if self.errors else None

    @property
    def fields(self) -> list[str]:
        """Every invalid field's path."""
        return [str(e.get("path")) for e in self.errors if e.get("path")]


class BadRequest(ApiError):
    """400: a body that is not JSON, or a malformed request."""


class Unauthorized(ApiError):
    """401: missing, unknown or revoked API key."""


class NotFound(ApiError):
    """404: no such experiment or sweep (or another owner's)."""


class Conflict(ApiError):
    """409: not allowed in the current status (e.g. retrying a running experiment)."""


class PayloadTooLarge(ApiError):
    """413: the body is over ACTLAB_MAX_BODY_BYTES."""


class InvalidRequest(ApiError):
    """422: an invalid spec or parameter; `field` names where."""


class LimitExceeded(InvalidRequest):
    """A configured limit; `setting` names the ACTLAB_* variable that raises it."""


class TooManyRequests(ApiError):
    """429: too many queued experiments for this owner."""


class ServerError(ApiError):
    """5xx."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidRequest,
    429: TooManyRequests,
}


def from_response(response: httpx.Response) -> ApiError:
    """The typed exception for an error response."""
    try:
        problem = response.json()
    except ValueError:
        problem = {"detail": response.text[:500]}
    if not isinstance(problem, dict):
        problem = {"detail": str(problem)}
    problem.setdefault("title", response.reason_phrase)
    cls = _BY_STATUS.get(
        response.status_code, ServerError if response.status_code >= 500 else ApiError
    )
    if problem.get("setting") and cls is InvalidRequest:
        cls = LimitExceeded
    return cls(response.status_code, problem)
