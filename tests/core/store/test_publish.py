"""Live publishing never holds up the thread that commits (a worker's training loop): it
queues, and one background thread sends or drops (core/store/publish.py)."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from core.settings import Settings
from core.store import publish
from service.embedded import EmbeddedRedis
from tests.support import HANG_S

# A listener that never answers, and an embedded Redis of its own: whatever the
# configuration, so the first pass only.
pytestmark = pytest.mark.own_backend


def _message(n: int) -> dict[str, Any]:
    return {"experiment_id": f"exp_{n}", "events": [], "metrics": [], "progress": None,
            "resync": False}  # fmt: skip


def test_publish_returns_while_the_broker_hangs_and_drops_while_it_is_away(
    tmp_path: Path,
) -> None:
    # A broker that accepts connections (the kernel's backlog) and never replies.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    settings = Settings(data_dir=tmp_path, broker_url=f"redis://127.0.0.1:{port}/0")
    publisher = publish.Publisher(settings, timeout_s=HANG_S, pause_s=HANG_S)

    publisher.publish([_message(0)])  # returned, though its send cannot finish
    assert not publish.flush(timeout_s=0)  # the background thread is still waiting on it
    assert publisher.dropped == 0

    listener.close()  # resets the pending connection: the send fails
    assert publish.flush(timeout_s=HANG_S)
    assert publisher.dropped == 1
    publisher.publish([_message(n) for n in range(1, 101)])
    assert publish.flush(timeout_s=HANG_S)
    assert publisher.dropped == 101  # the breaker is open: dropped without a try


def _subscriber(server: EmbeddedRedis, name: str) -> Any:
    pubsub = redis.Redis(unix_socket_path=str(server.socket)).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(name)
    return pubsub


def _received(pubsub: Any) -> dict[str, Any] | None:
    message = pubsub.get_message(timeout=0.1)
    return json.loads(message["data"]) if message else None


def test_after_the_broker_returns_the_next_message_asks_streams_to_re_read() -> None:
    server = EmbeddedRedis(Path(f"/tmp/actlab-pub-{uuid.uuid4().hex[:8]}")).start()
    try:
        settings = Settings(data_dir=server.directory, broker_url=f"redis+socket://{server.socket}")
        publisher = publish.Publisher(settings, pause_s=0.1)
        pubsub = _subscriber(server, publish.channel(settings))
        publisher.publish([_message(0)])
        while (got := _received(pubsub)) is None:
            pass
        assert got["experiment_id"] == "exp_0" and got["resync"] is False

        server.stop()
        publisher.publish([_message(1)])
        assert publish.flush(timeout_s=HANG_S)
        assert publisher.dropped == 1

        server.start()
        pubsub = _subscriber(server, publish.channel(settings))
        n = 2
        while (got := _received(pubsub)) is None:  # until the breaker lets one through
            publisher.publish([_message(n)])
            n += 1
        assert got["resync"] is True  # streams re-read what was dropped from the database
        publisher.publish([_message(n)])
        while (got := _received(pubsub)) is None or got["experiment_id"] != f"exp_{n}":
            pass
        assert got["resync"] is False
    finally:
        server.stop()
