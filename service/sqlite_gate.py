"""Bound how many requests contend for SQLite's single write lock at once.

A request's transaction takes SQLite's write lock at its first statement (BEGIN IMMEDIATE)
and keeps it across several threadpool jobs (dependencies, endpoint, commit). If every
pool thread were blocked waiting for that lock, the holder could never get a thread to
commit: a deadlock broken only by the busy timeout. Admitting fewer requests than there
are threads rules that out; the rest wait on the event loop, costing no thread.

The gate opens when the response starts: FastAPI commits the request's session before it
sends the response, so a streaming response (SSE) does not hold the gate while it streams.
"""

from __future__ import annotations

import asyncio
from typing import Any

DEFAULT_LIMIT = 16  # well under anyio's default pool of 40 threads


class SQLiteGate:
    def __init__(self, app: Any, limit: int = DEFAULT_LIMIT) -> None:
        self.app = app
        self.limit = limit
        self._semaphore: asyncio.Semaphore | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._semaphore is None:  # created on the server's own event loop
            self._semaphore = asyncio.Semaphore(self.limit)
        semaphore = self._semaphore
        await semaphore.acquire()
        held = True

        async def send_and_open(message: dict[str, Any]) -> None:
            nonlocal held
            if held and message["type"] == "http.response.start":
                held = False
                semaphore.release()
            await send(message)

        try:
            await self.app(scope, receive, send_and_open)
        finally:
            if held:
                semaphore.release()
