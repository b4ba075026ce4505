"""Fixtures shared by the whole suite (see tests/support.py for what they build on)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.embedded import EmbeddedRedis
from service.settings import Settings
from tests.support import Process, drop_database, fresh_database, start_worker


@pytest.fixture(scope="session")
def shared_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated data sets are cached here once per session."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's Redis when ACTLAB_TEST_BROKER_URL is set, else an embedded one."""
    url = os.environ.get("ACTLAB_TEST_BROKER_URL")
    if url:
        yield url
        return
    # Unix socket paths are limited to ~100 bytes: keep the directory short.
    directory = Path(f"/tmp/actlab-redis-{uuid.uuid4().hex[:8]}")
    server = EmbeddedRedis(directory).start()
    yield f"redis+socket://{server.socket}"
    server.stop()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    url = fresh_database(tmp_path)
    yield url
    drop_database(url)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, broker_url: str, shared_data_dir: Path) -> Settings:
    """Settings for one test: its own database and queue, the session's broker and data."""
    return Settings(
        data_dir=shared_data_dir,
        database_url=database_url,
        broker_url=broker_url,
        checkpoint_dir=tmp_path / "checkpoints",
        queue=f"actlab-test-{uuid.uuid4().hex[:10]}",
        lease_seconds=20,
        heartbeat_seconds=2,
        reaper_interval_seconds=2,
        visibility_timeout_seconds=3600,
        auth_enabled=False,  # tests/service/test_auth.py turns it on
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[Process]:
    """One real `actlab worker` process on the test's queue and database."""
    process = start_worker(settings, tmp_path / "worker.log")
    yield process
    process.stop()
