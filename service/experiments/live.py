"""The API side of the live fan-out: one async Redis subscription per API process.

Workers (and the API itself) publish what they commit (see service/store/live.py); the hub
reads the deployment's channel on the event loop and hands each message to the streams of
its experiment. A stream waiting for news holds a queue entry, not a thread or a database
connection. The hub also admits streams under the caps per owner and in total.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI

from service.errors import LimitExceeded, Unavailable
from service.settings import Settings
from service.store import live

log = logging.getLogger("actlab.live")

QUEUE_SIZE = 1000  # messages a slow stream may lag behind before it re-reads the database
LOST = {"lost": True}  # the subscription dropped: streams end, clients reconnect and replay


class Subscription:
    """The messages of some experiments, for one stream."""

    def __init__(self, experiment_ids: Iterable[str]) -> None:
        self.experiment_ids = frozenset(experiment_ids)
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False  # messages were dropped: re-read the database before going on

    def put(self, message: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed = True

    async def get(self, timeout: float) -> dict[str, Any] | None:
        """The next message, or None after `timeout` seconds."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            return None


class Ticket:
    """One admitted stream; `release` is idempotent."""

    def __init__(self, hub: Hub, owner: str | None) -> None:
        self.hub, self.owner, self.released = hub, owner, False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.hub._release(self.owner)


class Hub:
    """Routes the channel's messages to subscriptions by experiment id."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.channel = live.channel(settings)
        self._routes: dict[str, set[Subscription]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.open_total = 0
        self._open_by_owner: dict[str, int] = defaultdict(int)
        self.db_slots = asyncio.Semaphore(4)  # streams reading the database at once

    # -- admission ---------------------------------------------------------------------------
    def admit(self, owner: str | None) -> Ticket:
        """A ticket for one more stream, or 429 naming the cap that is full."""
        settings = self.settings
        if self.open_total >= settings.max_streams_total:
            raise _too_many("open streams", "ACTLAB_MAX_STREAMS_TOTAL", settings.max_streams_total)
        if owner is not None and self._open_by_owner[owner] >= settings.max_streams_per_owner:
            raise _too_many(
                f"open streams of {owner!r}",
                "ACTLAB_MAX_STREAMS_PER_OWNER",
                settings.max_streams_per_owner,
            )
        self.open_total += 1
        if owner is not None:
            self._open_by_owner[owner] += 1
        return Ticket(self, owner)

    def _release(self, owner: str | None) -> None:
        self.open_total -= 1
        if owner is not None:
            self._open_by_owner[owner] -= 1

    # -- subscriptions -----------------------------------------------------------------------
    async def subscribe(self, experiment_ids: Iterable[str]) -> Subscription:
        """Route these experiments' messages to a new subscription, once the channel is live.

        A stream subscribes before it reads the database, so nothing committed after the
        read can pass unseen.
        """
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            await asyncio.wait_for(self._ready.wait(), timeout=5.0)
        except asyncio.TimeoutError:
            raise Unavailable("the live channel (Redis pub/sub) is not reachable") from None
        sub = Subscription(experiment_ids)
        for experiment_id in sub.experiment_ids:
            self._routes[experiment_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        for experiment_id in sub.experiment_ids:
            routes = self._routes.get(experiment_id)
            if routes is not None:
                routes.discard(sub)
                if not routes:
                    del self._routes[experiment_id]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except (aioredis.RedisError, OSError) as exc:
                log.warning("live channel lost (%s); reconnecting", type(exc).__name__)
            finally:
                self._ready.clear()
                for subs in list(self._routes.values()):
                    for sub in subs:
                        sub.put(LOST)
            await asyncio.sleep(1.0)

    async def _listen(self) -> None:
        client = _client(self.settings)
        try:
            pubsub = client.pubsub()
            await pubsub.subscribe(self.channel)
            async for message in pubsub.listen():
                if message["type"] == "subscribe":
                    self._ready.set()
                elif message["type"] == "message":
                    self._route(json.loads(message["data"]))
        finally:
            await client.aclose()

    def _route(self, message: dict[str, Any]) -> None:
        for sub in list(self._routes.get(message.get("experiment_id", ""), ())):
            sub.put(message)


def _too_many(what: str, setting: str, limit: int) -> LimitExceeded:
    error = LimitExceeded(f"too many {what}", setting=setting, limit=limit, status=429)
    error.headers["Retry-After"] = "5"
    return error


def _client(settings: Settings) -> aioredis.Redis:
    url = settings.resolved_broker_url
    if url.startswith("redis+socket://"):
        path = url.removeprefix("redis+socket://")
        return aioredis.Redis(unix_socket_path=path, health_check_interval=30)
    return aioredis.Redis.from_url(url, health_check_interval=30)


def hub_of(app: FastAPI) -> Hub:
    hub: Hub = app.state.live_hub
    return hub


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Create the app's hub on its event loop; stop its subscription at shutdown."""
    app.state.live_hub = Hub(app.state.settings)
    try:
        yield
    finally:
        await app.state.live_hub.close()
