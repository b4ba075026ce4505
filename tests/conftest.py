"""Fixtures shared by the whole suite (see tests/support.py for what they build on)."""

from __future__ import annotations

import os

# One intra-op thread in each test process and in every worker or `actlab up` it starts
# (children inherit the environment): pytest-xdist already puts a process on every core, and
# a second OpenMP thread per process, spinning while it waits, slowed the end-to-end tests up
# to threefold when the cores were shared. Tests of the threaded paths set the count they test
# (tests/activations/test_blocks.py, test_native.py, test_hard_sparse.py; the packed engine).
# A value set by hand is kept.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from service.app import create_app
from service.embedded import EmbeddedRedis
from tests import support
from tests.support import Process, drop_database, fresh_database, start_worker

# Fixtures whose use makes a test depend on the configuration (SQLite + embedded Redis, or
# Postgres + a Redis server): a test that needs one of them, directly or through another
# fixture, is marked `backend` and runs in both configurations' passes.
BACKEND_FIXTURES = frozenset({"database_url", "broker_url"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if BACKEND_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.backend)


# Each module's seconds (setup, call and teardown of its tests), added up where the reports
# arrive (the xdist controller, or the only process) and the costliest shown after the run,
# beside pytest's slowest tests: a module that starts systems once costs more than its
# slowest test says.
_module_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    module = report.nodeid.split("::", 1)[0]
    _module_seconds[module] = _module_seconds.get(module, 0.0) + report.duration


@pytest.hookimpl(trylast=True)  # after pytest's own slowest tests
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or not config.getoption("durations"):
        return
    costliest = sorted(_module_seconds.items(), key=lambda kv: -kv[1])[:10]
    terminalreporter.write_sep("=", "costliest 10 modules (their tests' seconds, added up)")
    for module, seconds in costliest:
        terminalreporter.write_line(f"{seconds:8.1f}s  {module}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> object:
    support.current_test.update(
        nodeid=item.nodeid,
        backend=any(item.get_closest_marker(m) for m in ("backend", "own_backend")),
    )
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    # Teardown closes what earlier tests opened (module and session fixtures): not checked.
    support.current_test.update(nodeid=item.nodeid, backend=True)
    return (yield)


def _guard_connections() -> None:
    """An unmarked test that opens a database or Redis connection in this process fails.

    Child processes (workers, `actlab up`) are started from the configured URLs, which only
    `support.configured_*_url()` and the fixtures above hand out, and both check the marker.
    """
    import redis.asyncio.connection
    import redis.connection
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    @event.listens_for(Pool, "connect")
    def _on_connect(dbapi_connection: object, record: object) -> None:
        support.require_backend_marker("a database connection")

    sync_connect = redis.connection.AbstractConnection.connect_check_health

    def guarded_sync(self: object, *args: object, **kwargs: object) -> object:
        support.require_backend_marker("a Redis connection")
        return sync_connect(self, *args, **kwargs)  # type: ignore[arg-type]

    async_connect = redis.asyncio.connection.AbstractConnection.connect_check_health

    async def guarded_async(self: object, *args: object, **kwargs: object) -> object:
        support.require_backend_marker("a Redis connection")
        return await async_connect(self, *args, **kwargs)  # type: ignore[arg-type]

    redis.connection.AbstractConnection.connect_check_health = guarded_sync  # type: ignore[method-assign]
    redis.asyncio.connection.AbstractConnection.connect_check_health = guarded_async  # type: ignore[method-assign]


_guard_connections()


@pytest.fixture(scope="session")
def shared_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated data sets are cached here once per session."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's Redis when ACTLAB_TEST_BROKER_URL is set, else an embedded one."""
    url = support.configured_broker_url()
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


def _test_settings(directory: Path, database_url: str, broker_url: str, data_dir: Path) -> Settings:
    """Settings on the given database, with a queue of their own, the session's broker and data."""
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        broker_url=broker_url,
        checkpoint_dir=directory / "checkpoints",
        queue=f"actlab-test-{uuid.uuid4().hex[:10]}",
        lease_seconds=20,
        heartbeat_seconds=2,
        reaper_interval_seconds=2,
        visibility_timeout_seconds=3600,
        auth_enabled=False,  # tests/service/test_auth.py turns it on
    )


@pytest.fixture
def settings(tmp_path: Path, database_url: str, broker_url: str, shared_data_dir: Path) -> Settings:
    """Settings for one test: its own database and queue, the session's broker and data."""
    return _test_settings(tmp_path, database_url, broker_url, shared_data_dir)


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


# One running system (a database, a queue and a worker on them) for a whole module, for
# end-to-end tests that need a worker but not a fresh one: each test reads only the
# experiments it created, so sharing the worker changes nothing they check. A module opts in
# by overriding `client` and `worker` with `module_client` and `module_worker`.
@pytest.fixture(scope="module")
def module_settings(
    tmp_path_factory: pytest.TempPathFactory, broker_url: str, shared_data_dir: Path
) -> Iterator[Settings]:
    directory = tmp_path_factory.mktemp("module")
    url = fresh_database(directory)
    yield _test_settings(directory, url, broker_url, shared_data_dir)
    drop_database(url)


@pytest.fixture(scope="module")
def module_worker(
    module_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Process]:
    process = start_worker(module_settings, tmp_path_factory.mktemp("worker") / "worker.log")
    yield process
    process.stop()


@pytest.fixture
def module_client(module_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(module_settings)) as test_client:
        yield test_client
