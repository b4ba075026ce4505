"""Exception handlers: every error leaves as application/problem+json (RFC 9457)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from core.diskfull import is_disk_full
from core.spec.paths import field_errors
from service.errors import PROBLEM_JSON, InsufficientStorage, InvalidSpec, ProblemError

log = logging.getLogger("actlab.api")


class HTTPProblem(ProblemError):
    """Starlette's own HTTP errors (unknown route, wrong method, malformed body)."""

    TITLES = {400: "Bad request", 404: "Not found", 405: "Method not allowed"}

    def __init__(self, exc: HTTPException) -> None:
        super().__init__(str(exc.detail), headers=dict(exc.headers or {}))
        self.status = exc.status_code
        self.title = self.TITLES.get(exc.status_code, "HTTP error")
        self.type = self.title.lower().replace(" ", "-")


def render(error: ProblemError, instance: str) -> JSONResponse:
    """The one place an error becomes a problem+json response."""
    return JSONResponse(
        error.problem(instance),
        status_code=error.status,
        media_type=error.media_type,
        headers=error.headers,
    )


async def send(error: ProblemError, scope: dict[str, Any], asgi_send: Any) -> None:
    """`render` for pure ASGI middleware (body limits, strict JSON) that runs before routing."""
    await render(error, scope.get("path", ""))(scope, _no_receive, asgi_send)


async def _no_receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _invalid(exc: RequestValidationError) -> InvalidSpec:
    errors = field_errors(exc.errors(), getattr(exc, "body", None))
    detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:5])
    return InvalidSpec(detail, errors=errors)


def _unstorable(request: Request, exc: DataError) -> InvalidSpec:
    # The database refused a value the schema let through (e.g. a NUL character, which
    # Postgres text cannot hold): the client's input, so a 422, never a 500.
    log.warning("database rejected a value on %s: %s", request.url.path, exc.orig)
    return InvalidSpec(f"a value cannot be stored: {str(exc.orig).splitlines()[0]}")


def _http(request: Request, exc: HTTPException) -> HTTPProblem:
    error = HTTPProblem(exc)
    if exc.status_code == 405:
        # Starlette lists only the first route matching the path; a path served by
        # several routes (GET and POST) allows all of their methods.
        error.headers["Allow"] = ", ".join(_allowed_methods(request))
    return error


# How long /readyz reports a database write refused for lack of space: long enough for a
# probe or an operator to see it, short enough that freed space reads ready again.
DISK_FULL_READY_S = 300.0


def _operational(request: Request, exc: OperationalError) -> ProblemError:
    """A full database is a 507 that says so (and /readyz reports it); any other
    operational error (a dropped connection, a lock timeout) is still a 500."""
    if not is_disk_full(exc):
        return _crash(request, exc)
    request.app.state.disk_full_at = time.time()
    log.error("database full on %s %s: %s", request.method, request.url.path, exc.orig)
    return InsufficientStorage(
        "the server's database has no space left for this write; nothing was stored: "
        "retry once its operator has freed space"
    )


def disk_full_since(app: Any, now: float | None = None) -> float | None:
    """When a write last failed for lack of space, if within DISK_FULL_READY_S."""
    at: float | None = getattr(app.state, "disk_full_at", None)
    if at is None or (now or time.time()) - at > DISK_FULL_READY_S:
        return None
    return at


def _crash(request: Request, exc: Exception) -> ProblemError:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return ProblemError("an unexpected error occurred")


def _handler(convert: Callable[[Request, Any], ProblemError]) -> Any:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return render(convert(request, exc), str(request.url.path))

    return handler


def install(app: FastAPI) -> None:
    """Register the handlers on `app`: each turns its exception into an ProblemError."""
    app.add_exception_handler(ProblemError, _handler(lambda _request, exc: exc))
    app.add_exception_handler(RequestValidationError, _handler(lambda _r, exc: _invalid(exc)))
    app.add_exception_handler(HTTPException, _handler(_http))
    app.add_exception_handler(DataError, _handler(_unstorable))
    app.add_exception_handler(OperationalError, _handler(_operational))
    app.add_exception_handler(Exception, _handler(_crash))


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details; `errors` lists each invalid field's path.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "setting": {"type": "string"},
        "limit": {"type": "integer"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": ["string", "null"]},
                },
            },
        },
    },
}

_WHY = {
    400: "Malformed request (e.g. a body that is not UTF-8 JSON)",
    401: "Missing, unknown or revoked API key",
    404: "Not found (also: owned by someone else)",
    409: "Conflicts with the current status",
    413: "Request body too large",
    422: "Invalid request: each error names its field path",
    429: "Too many queued experiments for this owner",
    507: "The server's database has no space left: nothing was stored",
}

# Documented on every route, so clients (and schemathesis) know errors are problem+json.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": why, "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}}
    for code, why in _WHY.items()
}
