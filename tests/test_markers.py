"""The `backend` marker decides which tests the second configuration runs: it must not drift.

The first pass (SQLite + embedded Redis) runs every test; the second (Postgres + a Redis
server) runs `-m backend` alone. A test that depends on the configuration without the marker
would silently never meet Postgres, so such a test fails instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine

from tests import support
from tests.support import ROOT, UnmarkedBackendUse


@pytest.fixture
def unmarked() -> object:
    """Pretend the running test has no `backend` marker (as this module's tests have not)."""
    saved = dict(support.current_test)
    support.current_test.update(backend=False)
    yield
    support.current_test.update(saved)


def test_this_module_runs_unmarked(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("backend") is None
    assert support.current_test == {"nodeid": request.node.nodeid, "backend": False}


def test_a_database_connection_without_the_marker_fails(unmarked: object, tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(UnmarkedBackendUse, match="a database connection without the `backend`"):
        engine.connect()
    engine.dispose()


def test_a_redis_connection_without_the_marker_fails(unmarked: object) -> None:
    # Refused before any socket is opened: no server needs to listen there.
    client = redis.Redis(unix_socket_path="/nonexistent/redis.sock")
    with pytest.raises(UnmarkedBackendUse, match="a Redis connection"):
        client.ping()


def test_reading_the_configuration_without_the_marker_fails(unmarked: object) -> None:
    with pytest.raises(UnmarkedBackendUse, match="ACTLAB_TEST_DATABASE_URL"):
        support.configured_database_url()
    with pytest.raises(UnmarkedBackendUse, match="ACTLAB_TEST_BROKER_URL"):
        support.configured_broker_url()


def test_tests_that_use_the_database_fixtures_are_marked(
    request: pytest.FixtureRequest, database_url: str
) -> None:
    assert request.node.get_closest_marker("backend") is not None
    assert support.current_test["backend"] is True


def test_no_test_reads_the_configuration_around_the_helpers() -> None:
    """Only tests/support.py reads ACTLAB_TEST_*_URL, so the marker check cannot be skipped."""
    reads = re.compile(r"environ.*ACTLAB_TEST_(DATABASE|BROKER)_URL")
    found = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if reads.search(path.read_text())
    ]
    assert found == ["tests/support.py"], found
