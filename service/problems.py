"""Exception handlers: every error leaves as application/problem+json (RFC 9457)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from service.errors import PROBLEM_BASE, PROBLEM_JSON, ActlabError

log = logging.getLogger("actlab.api")


def field_path(loc: tuple[Any, ...], body: Any) -> str:
    """A dotted path into the request as the client wrote it.

    pydantic inserts union tags and branch names into `loc` (`dataset.mnist1d.num_samples`);
    walking the submitted body drops the segments the client never wrote.
    """
    source, *rest = loc if loc else ("body",)
    parts: list[str] = [] if source == "body" else [str(source)]
    node = body if source == "body" else None
    for segment in rest:
        if _contains(node, segment):
            node = node[segment]  # type: ignore[index]
        elif isinstance(node, dict) and (segment in node.values() or "[" in str(segment)):
            continue  # the discriminator's value or a union branch: not in the document
        else:
            node = None
        parts.append(f"[{segment}]" if isinstance(segment, int) else str(segment))
    return ".".join(parts).replace(".[", "[") or "body"


def _contains(node: Any, segment: Any) -> bool:
    if isinstance(node, dict):
        return segment in node
    return isinstance(node, list) and isinstance(segment, int) and 0 <= segment < len(node)


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _problem(status: int, type_: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": PROBLEM_BASE + type_, "title": title, "status": status, "detail": detail}
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    body = getattr(exc, "body", None)
    errors = []
    for err in exc.errors():
        message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        errors.append(
            {
                "path": field_path(tuple(err.get("loc", ())), body),
                "message": message,
                "type": err.get("type"),
            }
        )
    return errors


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""

    @app.exception_handler(ActlabError)
    async def actlab_error(request: Request, exc: ActlabError) -> JSONResponse:
        return JSONResponse(
            exc.problem(str(request.url.path)),
            status_code=exc.status,
            media_type=exc.media_type,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        detail = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:5])
        return _problem(422, "invalid-request", "Invalid request", detail, errors=errors)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        title = {400: "Bad request", 404: "Not found", 405: "Method not allowed"}.get(
            exc.status_code, "HTTP error"
        )
        slug = title.lower().replace(" ", "-")
        response = _problem(exc.status_code, slug, title, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        if exc.status_code == 405:
            # Starlette lists only the first route matching the path; a path served by
            # several routes (GET and POST) allows all of their methods.
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
        return response

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the schema let through (e.g. a NUL character, which
        # Postgres text cannot hold): the client's input, so a 422, never a 500.
        log.warning("database rejected a value on %s: %s", request.url.path, exc.orig)
        detail = f"a value cannot be stored: {str(exc.orig).splitlines()[0]}"
        return _problem(422, "invalid-request", "Invalid request", detail)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _problem(500, "internal", "Internal error", "an unexpected error occurred")


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
}

# Documented on every route, so clients (and schemathesis) know errors are problem+json.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": why, "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}}
    for code, why in _WHY.items()
}
