"""The request's transaction commits before the response leaves: a 201 means it is stored."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi.testclient import TestClient

from core.settings import Settings
from core.store.db import session_scope
from core.store.models import Experiment
from tests.support import canonical_spec


def test_a_created_experiment_is_readable_when_its_201_is_sent(
    client: TestClient, settings: Settings
) -> None:
    """At the moment the server sends the 201's body, another connection already sees the row.

    The ASGI `send` callable runs while the response is on its way; had the session's commit
    been left to after the response (FastAPI's default scope for a yield dependency), a
    client's next GET could race it and get a 404.
    """
    body = json.dumps(canonical_spec()).encode()
    sent: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]
        elif message["type"] == "http.response.body" and message.get("body"):
            created = json.loads(message["body"])
            with session_scope(settings.resolved_database_url) as session:
                sent["stored"] = session.get(Experiment, created["id"]) is not None

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/experiments",
        "raw_path": b"/v1/experiments",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"host", b"testserver")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    asyncio.run(client.app(scope, receive, send))  # type: ignore[arg-type]
    assert sent["status"] == 201
    assert sent["stored"] is True
