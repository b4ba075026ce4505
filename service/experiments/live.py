"""The API side of the live fan-out: one async Redis subscription per API process.

Workers (and the API itself) publish what they commit (see core/store/publish.py); the hub
reads the deployment's channel on the event loop and hands each message to the streams of
its experiment. A stream waiting for news holds a queue entry, not a thread or a database
connection. The hub also admits streams under the caps per owner and in total.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Hashable, Iterable

import redis.asyncio as aioredis
from fastapi import FastAPI

from core.settings import Settings
from core.store import publish
from service.errors import LimitExceeded, Unavailable
from service.experiments import frames
from service.experiments.frames import Batch

log = logging.getLogger("actlab.live")

QUEUE_SIZE = 1000  # messages a stream may lag behind before the hub drops it
WAKE_SLICE = 64  # streams woken at once: between slices the loop serves requests
LOST = "the API lost its subscription to the live channel"


class Subscription:
    """The messages of some experiments, for one stream: a bounded queue the hub fills.

    The hub never waits on a stream: a stream that falls `limit` messages behind (a
    client that reads too slowly) is closed with a reason, and its client reconnects
    with its Last-Event-ID and catches up from the database.
    """

    def __init__(self, experiment_ids: Iterable[str], limit: int = QUEUE_SIZE) -> None:
        self.experiment_ids = frozenset(experiment_ids)
        self.limit = limit
        self.closed: str | None = None  # why the hub dropped this stream
        self._pending: list[Batch] = []
        self._waiter: asyncio.Future[None] | None = None
        self.tick = 0  # the hub's clock when it subscribed

    def put(self, batch: Batch) -> None:
        """Queue a message; the hub wakes the stream (`wake`) once it has queued a round."""
        if self.closed is not None:
            return
        if len(self._pending) >= self.limit:
            self._pending = []
            self.close(f"more than {self.limit} messages behind: the client reads too slowly")
            return
        self._pending.append(batch)

    def close(self, reason: str) -> None:
        self.closed = self.closed or reason
        self.wake()

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self, timeout: float) -> list[Batch]:
        """Every message queued so far (one wakeup, one write), or [] after `timeout` s."""
        if not self._pending and self.closed is None:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(timeout, _resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        pending, self._pending = self._pending, []
        return pending


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


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
        self.channel = publish.channel(settings)
        self._routes: dict[str, set[Subscription]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._inbox: list[bytes] = []  # channel messages not yet routed
        self._news = asyncio.Event()
        self.open_total = 0
        self._open_by_owner: dict[str, int] = defaultdict(int)
        self.db_slots = asyncio.Semaphore(4)  # streams reading the database at once
        self._reads: dict[Hashable, tuple[int, asyncio.Task[Batch]]] = {}
        self._clock = itertools.count()
        self.queue_limit = settings.stream_queue_messages

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
        sub = Subscription(experiment_ids, self.queue_limit)
        sub.tick = self.now()
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
                        sub.close(LOST)
            await asyncio.sleep(1.0)

    async def _listen(self) -> None:
        """Read the channel into the inbox; `_deliver` routes it, a round at a time."""
        client = _client(self.settings)
        deliver = asyncio.get_running_loop().create_task(self._deliver())
        try:
            pubsub = client.pubsub()
            await pubsub.subscribe(self.channel)
            async for message in pubsub.listen():
                if message["type"] == "subscribe":
                    self._ready.set()
                elif message["type"] == "message":
                    self._inbox.append(message["data"])
                    self._news.set()
        finally:
            deliver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await deliver
            await client.aclose()

    async def _deliver(self) -> None:
        """Route what came in since the last round, then wake its streams a slice at a time.

        A round takes every message that arrived while the last one was being written, so
        a stream that fell behind writes them all at once: the writes per stream follow
        the rounds the API can serve, not the messages the workers send. Waking a slice
        at a time lets the event loop serve requests (`/healthz`, a GET) between slices
        instead of after a thousand writes.
        """
        while True:
            await self._news.wait()
            self._news.clear()
            inbox, self._inbox = self._inbox, []
            woken: dict[Subscription, None] = {}
            for data in inbox:
                for sub in self._route(data):
                    woken[sub] = None
            subs = list(woken)
            for start in range(0, len(subs), WAKE_SLICE):
                for sub in subs[start : start + WAKE_SLICE]:
                    sub.wake()
                await asyncio.sleep(0)

    def _route(self, data: bytes) -> list[Subscription]:
        """Parse a message once into one batch that every stream of its experiment shares,
        queue it on those streams and return them."""
        news = json.loads(data)
        subs = list(self._routes.get(news.get("experiment_id", ""), ()))
        if subs:
            batch = frames.from_channel(news)
            batch.tick = self.now()
            for sub in subs:
                sub.put(batch)
        return subs

    def now(self) -> int:
        """A tick of the hub's clock: orders messages, subscriptions and database reads."""
        return next(self._clock)

    async def read(self, key: Hashable, fn: Callable[[], Batch], *, not_before: int) -> Batch:
        """`fn()` in a thread, at most `db_slots` at once. Streams that need the same read
        (`key`) share one, if it began after the tick they need it to see (their
        subscription, or the message that asked for it): after one message 1000 streams
        read the database once."""
        shared = self._reads.get(key)
        if shared is None or shared[0] <= not_before:
            task = asyncio.get_running_loop().create_task(self._read(fn))
            shared = self._reads[key] = (self.now(), task)
            task.add_done_callback(lambda _: self._forget(key, task))
        # Shielded: a client that leaves does not cancel the read its sharers wait for.
        return await asyncio.shield(shared[1])

    def _forget(self, key: Hashable, task: asyncio.Task[Batch]) -> None:
        if key in self._reads and self._reads[key][1] is task:
            del self._reads[key]

    async def _read(self, fn: Callable[[], Batch]) -> Batch:
        async with self.db_slots:
            return await asyncio.to_thread(fn)


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
