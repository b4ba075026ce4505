"""A minimal SSE reader over httpx and a real `actlab api` process, for stream tests."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support import Process, settings_env


@dataclass
class Message:
    event: str
    data: Any
    id: str | None


@dataclass
class Read:
    """What one connection delivered before it ended or was dropped."""

    messages: list[Message] = field(default_factory=list)
    last_id: str | None = None
    ended: bool = False  # an `end` event arrived


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_api(settings: Any, log: Path) -> Iterator[str]:
    """`actlab api` on a free port; yields its base URL."""
    port = free_port()
    process = Process(
        [sys.executable, "-m", "actlab", "api", "--port", str(port)],
        settings_env(settings),
        log,
    )
    try:
        process.wait_for("Uvicorn running")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def parse(lines: Iterator[str]) -> Iterator[Message]:
    """SSE framing: fields until a blank line; comments (`:`) skipped."""
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in fields:
                yield Message(
                    fields.get("event", "message"), json.loads(fields["data"]), fields.get("id")
                )
            fields = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            fields[key] = value.removeprefix(" ")


def read(
    client: httpx.Client, path: str, last_id: str | None = None, max_messages: int | None = None
) -> Read:
    """One connection: until `end`, the server closes, or `max_messages` (then drop it)."""
    headers = {"Accept": "text/event-stream"}
    if last_id:
        headers["Last-Event-ID"] = last_id
    out = Read(last_id=last_id)
    with client.stream("GET", path, headers=headers, timeout=120) as response:
        response.raise_for_status()
        for message in parse(response.iter_lines()):
            out.messages.append(message)
            out.last_id = message.id or out.last_id
            if message.event == "end":
                out.ended = True
                break
            if max_messages is not None and len(out.messages) >= max_messages:
                break
    return out


def points(messages: list[Message]) -> list[tuple[Any, ...]]:
    """Every metric point delivered, as (experiment or None, name, step)."""
    return [
        (p.get("experiment_id"), p["name"], p["step"])
        for m in messages
        if m.event == "metrics"
        for p in m.data
    ]
