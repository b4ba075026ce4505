"""Bound how many requests hold a database transaction at once (SQLite and Postgres alike).

A request's transaction spans several threadpool jobs (dependencies, endpoint, commit)
and may wait on a lock another request's transaction holds: SQLite's single write lock
(taken at BEGIN IMMEDIATE), or on Postgres a row or unique-key lock (two requests with the
same Idempotency-Key) and a connection from the pool. If every pool thread were blocked
waiting (for a lock, or to check out a connection), the holder could never get a thread
to commit: a deadlock broken only by a timeout, every request failing. Seen on Postgres
with 1000 concurrent POSTs: all 15 connections held, 40 threads waiting, 30 s pool
timeouts. Admitting fewer requests than there are threads, and than the API's pool has
connections, rules that out; the rest wait on the event loop, costing nothing.

The gate opens when the response starts: FastAPI commits the request's session before it
sends the response, so a streaming response (SSE) does not hold the gate while it streams.
Liveness (`/healthz`) touches no database and is never gated.
"""

from __future__ import annotations

import asyncio
from typing import Any

DEFAULT_LIMIT = 16  # under anyio's 40 threads and the API's 20 Postgres connections
UNGATED = frozenset({"/healthz"})


class DatabaseGate:
    def __init__(self, app: Any, limit: int = DEFAULT_LIMIT) -> None:
        self.app = app
        self.limit = limit
        self._semaphore: asyncio.Semaphore | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in UNGATED:
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
