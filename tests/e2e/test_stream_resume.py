"""Resuming streams: a sweep's per-experiment cursor and a slow reader dropped and replayed.

The rows are written here, in the test process, through the same repositories and
post-commit publisher as the worker's, so that the order of commits and messages can be
set exactly.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import Settings
from core.store import experiments as repo
from core.store import metrics as metrics_repo
from core.store import publish
from core.store.db import session_scope
from tests.e2e import sse_client
from tests.support import HANG_S, canonical_spec

pytestmark = pytest.mark.integration


def _sweep(api: httpx.Client) -> tuple[str, list[str]]:
    base = canonical_spec(dataset={"name": "moons"}, training={"epochs": 2})
    base = {k: v for k, v in base.items() if k not in ("name", "seed")}
    body = {"name": "s", "base_spec": base, "grid": {}, "seeds": [0, 1]}
    created = api.post("/v1/sweeps", json=body)
    assert created.status_code == 201, created.text
    sweep_id = created.json()["id"]
    ids = sorted(e["id"] for e in api.get(f"/v1/sweeps/{sweep_id}").json()["experiments"])
    return sweep_id, ids


def _write_point(settings: Settings, experiment_id: str, step: int, *, send: bool) -> None:
    with session_scope(settings.resolved_database_url) as session:
        metrics_repo.insert_points(
            session, experiment_id, step=step, epoch=0, values={"train/loss": 1.0}
        )
        if not send:  # committed, its message not (yet) sent: as if still in flight
            session.info.pop(publish.PENDING, None)


def _frames(response: httpx.Response) -> Iterator[sse_client.Message]:
    return sse_client.parse(response.iter_lines())


def test_a_sweep_stream_resumes_an_experiment_whose_message_came_after_a_later_id(
    settings: Settings, tmp_path: Path
) -> None:
    """Experiment A commits point a, then B commits point b > a, and B's message arrives
    first: a client that leaves right after b must still get a when it reconnects."""
    short = settings.model_copy(update={"stream_max_seconds": 3})
    publish.enable(short)
    headers = {"Accept": "text/event-stream"}
    with (
        sse_client.running_api(short, tmp_path / "api.log") as url,
        httpx.Client(base_url=url, timeout=HANG_S) as api,
    ):
        sweep_id, (first, second) = _sweep(api)
        path = f"/v1/sweeps/{sweep_id}/events"
        with api.stream("GET", path, headers=headers) as response:
            frames = _frames(response)
            progressed = set()
            while progressed != {first, second}:  # the replay ends with their progress
                message = next(frames)
                if message.event == "progress":
                    progressed.add(message.data["experiment_id"])
            _write_point(short, first, 1, send=False)
            _write_point(short, second, 1, send=True)
            message = next(m for m in frames if m.event == "metrics")
            assert sse_client.points([message]) == [(second, "train/loss", 1)]
            last_id = message.id
        resumed = sse_client.read(api, path, last_id)  # ends after stream_max_seconds
    assert (first, "train/loss", 1) in sse_client.points(resumed.messages)
    assert (second, "train/loss", 1) not in sse_client.points(resumed.messages)


def _slow_reader(url: str, path: str) -> socket.socket:
    """A raw connection that asks for a stream and then reads nothing (tiny receive buffer)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
    sock.sendall((request + "Connection: close\r\n\r\n").encode())
    return sock


def _drain(sock: socket.socket) -> list[sse_client.Message]:
    """Everything the server sent until it closed, as SSE messages (HTTP/1.1, chunked)."""
    raw = b""
    while chunk := sock.recv(1 << 16):
        raw += chunk
    sock.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    payload = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        payload, body = payload + rest[: int(size, 16)], rest[int(size, 16) + 2 :]
    assert b": closed: more than 3 messages behind" in payload
    return list(sse_client.parse(iter(payload.decode().split("\n"))))


def _read_logs(api: httpx.Client, path: str, last_id: str | None, count: int) -> list[Any]:
    """Log events' ids from a reader that keeps up, reconnecting with its last id (it may
    be dropped too in a burst), until it has `count`."""
    logs: list[Any] = []
    headers = {"Accept": "text/event-stream"}
    while len(logs) < count:
        if last_id:
            headers["Last-Event-ID"] = last_id
        with api.stream("GET", path, headers=headers) as response:
            for message in sse_client.parse(response.iter_lines()):
                last_id = message.id or last_id
                logs += _logs([message])
                if len(logs) >= count:
                    break
    return logs


def _logs(messages: list[sse_client.Message]) -> list[Any]:
    return [m.data["id"] for m in messages if m.event == "log"]


def test_a_slow_reader_is_dropped_without_stalling_others_and_resumes_from_the_db(
    settings: Settings, tmp_path: Path
) -> None:
    small = settings.model_copy(update={"stream_queue_messages": 3})
    publish.enable(small)
    count, size = 150, 40_000  # 6 MB of events: more than the slow reader's socket holds
    with (
        sse_client.running_api(small, tmp_path / "api.log") as url,
        httpx.Client(base_url=url, timeout=HANG_S) as api,
    ):
        exp = api.post("/v1/experiments", json=canonical_spec()).json()  # no worker: queued
        path = f"/v1/experiments/{exp['id']}/events"
        slow = _slow_reader(url, path)
        fast: list[Any] = []
        reader = threading.Thread(target=lambda: fast.extend(_read_logs(api, path, None, count)))
        reader.start()
        for k in range(count):
            with session_scope(small.resolved_database_url) as session:
                repo.add_event(session, exp["id"], "log", f"{k} " + "x" * size)
        reader.join(timeout=120)
        assert sorted(fast) == sorted(set(fast)) and len(fast) == count  # while slow stalled
        before = _drain(slow)  # what it got until the hub dropped it, and why
        rest = count - len(_logs(before))
        last_id = before[-1].id if before else None
        resumed = _read_logs(api, path, last_id, rest) if rest else []
    got = _logs(before) + resumed
    assert len(got) == len(set(got)) == count  # every event once, the rest from the db
