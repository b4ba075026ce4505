"""Reject request bodies over ACTLAB_MAX_BODY_BYTES with 413, before they are read whole."""

from __future__ import annotations

from typing import Any

from service import problems
from service.errors import LimitExceeded

Scope = dict[str, Any]


class BodyLimit:
    """Pure ASGI middleware: checks Content-Length, and counts streamed bodies too."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"")
        if length.isdigit():  # the server holds a client to its declared length
            if int(length) > self.max_bytes:
                await self._reject(scope, send)
                return
            await self.app(scope, receive, send)
            return
        # A streamed (chunked) body: read it here, up to the limit, then replay it. Raising
        # from inside `receive` instead would reach FastAPI's body parser, which turns any
        # error into a 400.
        messages, seen = [], 0
        while True:
            message = await receive()
            messages.append(message)
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await self._reject(scope, send)
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        replay = iter(messages)

        async def replayed() -> Any:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)

    async def _reject(self, scope: Scope, send: Any) -> None:
        error = LimitExceeded(
            "request body too large (bytes)",
            setting="ACTLAB_MAX_BODY_BYTES",
            limit=self.max_bytes,
            status=413,
        )
        await problems.send(error, scope, send)
