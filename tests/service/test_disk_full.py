"""A database write refused for lack of space is a 507 problem, and /readyz says so.

SQLite whatever the configuration: `PRAGMA max_page_count` makes the database refuse to
grow (SQLITE_FULL, "database or disk is full"), the engine's own condition. Postgres's
disk_full (SQLSTATE 53100) goes through the same check (tests/core/test_diskfull.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from core.settings import Settings
from core.store.db import get_engine
from service.app import create_app
from tests.scratch import scratch_database
from tests.support import canonical_spec, cap_sqlite_at_its_size


def _fill_until_refused(client: TestClient) -> httpx.Response:
    """POST experiments until the capped database has no room for the next one."""
    for i in range(500):
        response = client.post("/v1/experiments", json=canonical_spec(name=f"fill-{i}"))
        if response.status_code != 201:
            return response
    raise AssertionError("500 experiments fitted in a database that cannot grow")


def test_a_write_the_full_database_refuses_is_a_507_and_readyz_says_so(
    tmp_path: Path, broker_url: str, shared_data_dir: Path
) -> None:
    url = scratch_database(None, tmp_path)
    settings = Settings(
        database_url=url,
        broker_url=broker_url,
        queue=f"actlab-test-{uuid.uuid4().hex[:10]}",
        checkpoint_dir=tmp_path / "checkpoints",
        data_dir=shared_data_dir,
        auth_enabled=False,
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        cap_sqlite_at_its_size(url)

        refused = _fill_until_refused(client)

        assert refused.status_code == 507, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["type"].endswith("/insufficient-storage")
        assert "no space left" in problem["detail"]
        ready = client.get("/readyz")
        assert ready.status_code == 503, ready.text
        checks = ready.json()["checks"]
        assert checks["database"] == "ok" and checks["broker"] == "ok"
        assert "refused a write for lack of space" in checks["storage"]
        # Reads still work: only writes need room.
        assert client.get("/v1/experiments").status_code == 200
    get_engine(url).dispose()
