"""Test helpers: real databases, a real broker, real worker processes.

ACTLAB_TEST_DATABASE_URL (Postgres) and ACTLAB_TEST_BROKER_URL (Redis) switch the suite
from SQLite + embedded Redis to the given servers; each test still gets its own schema
(or SQLite file) and its own queue, so no test sees another's rows or messages.

Only tests marked `backend` say something that depends on that configuration, so only they
run in the second configuration's pass (`pytest -m backend`). Tests read the configuration
through `configured_database_url()` and `configured_broker_url()` alone, which refuse a test
without the marker; tests/conftest.py marks every test that uses the `database_url` or
`broker_url` fixtures, and fails an unmarked test that opens a database or Redis connection.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from core.spec.experiment import CANONICAL_EXAMPLE
from tests.scratch import drop_scratch, scratch_database

ROOT = Path(__file__).resolve().parent.parent

# The limit for any wait in a test: only a hang reaches it. Tests wait for conditions, never
# for a time, so a box busy with other work makes a test slower, never red; speed is measured
# in benchmarks/.
HANG_S = 600.0

# The test being set up or run, as tests/conftest.py reports it: (node id, marked backend).
current_test: dict[str, Any] = {"nodeid": None, "backend": True}


class UnmarkedBackendUse(AssertionError):
    """A test without the `backend` marker touched the configured database or broker."""


def require_backend_marker(what: str) -> None:
    """Fail the current test unless it carries `pytest.mark.backend`."""
    if current_test["backend"]:
        return
    raise UnmarkedBackendUse(
        f"{current_test['nodeid']} uses {what} without the `backend` marker, so the second "
        "configuration's pass (pytest -m backend) would leave it out: mark it "
        "`@pytest.mark.backend` (or `pytestmark = pytest.mark.backend` for its module)"
    )


def configured_database_url() -> str | None:
    """The Postgres URL of the test configuration, or None for SQLite."""
    require_backend_marker("the configured database (ACTLAB_TEST_DATABASE_URL)")
    return os.environ.get("ACTLAB_TEST_DATABASE_URL") or None


def configured_broker_url() -> str | None:
    """The Redis URL of the test configuration, or None for an embedded Redis."""
    require_backend_marker("the configured broker (ACTLAB_TEST_BROKER_URL)")
    return os.environ.get("ACTLAB_TEST_BROKER_URL") or None


def series(client: Any, experiment_id: str) -> dict[str, Any]:
    """Every metric series of an experiment, by name (GET .../metrics)."""
    return client.get(f"/v1/experiments/{experiment_id}/metrics").json()["series"]


def wait_for_epoch(client: Any, experiment_id: str, epoch: int) -> None:
    """Poll until the experiment has evaluated `epoch` epochs (its val/acc points)."""
    deadline = time.monotonic() + HANG_S
    while len(series(client, experiment_id).get("val/acc", [])) < epoch:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{experiment_id} never reached epoch {epoch}")
        time.sleep(0.1)


def bearer(settings: Any, owner: str, *, admin: bool = False) -> dict[str, str]:
    """Headers with a new API key for `owner`, made in the settings' database."""
    from core.store.db import session_scope
    from service import auth

    with session_scope(settings.resolved_database_url) as session:
        key = auth.create_key(session, owner=owner, admin=admin)
    return {"Authorization": f"Bearer {key}"}


def learnt(series: dict[str, Any]) -> dict[str, Any]:
    """A run's series without `sys/*`: what it learnt, not what its attempts used (memory and
    CPU differ between attempts, the learning curves must not)."""
    return {name: points for name, points in series.items() if not name.startswith("sys/")}


def canonical_spec(**overrides: Any) -> dict[str, Any]:
    """The canonical spec of DESIGN.md, with top-level sections replaced or merged."""
    spec = copy.deepcopy(CANONICAL_EXAMPLE)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    return spec


def fresh_database(tmp_path: Path) -> str:
    """A migrated, empty database: a new Postgres schema, or a new SQLite file."""
    return scratch_database(configured_database_url(), tmp_path)


def drop_database(url: str) -> None:
    drop_scratch(url)


def settings_env(settings: Any) -> dict[str, str]:
    """ACTLAB_* variables that reproduce `settings` in a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTLAB_")}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"ACTLAB_{name.upper()}"] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(ROOT)
    return env


class Process:
    """A child process of ours (`actlab worker`, `actlab api`), its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._fh = log.open("wb")
        self.proc = subprocess.Popen(
            args,
            env=env,
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, needle: str, timeout: float = HANG_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.output():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"process exited {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.1)
        raise TimeoutError(f"{needle!r} not seen in {timeout}s:\n{self.output()[-4000:]}")

    def interrupt_group(self, timeout: float = HANG_S) -> int:
        """Ctrl-C as a terminal sends it: SIGINT to the whole process group."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.stop(signal.SIGINT, timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = HANG_S) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._fh.close()
        return self.proc.returncode


def start_worker(settings: Any, log: Path, name: str = "w1") -> Process:
    worker = Process(
        [sys.executable, "-m", "actlab", "worker", "--name", f"{name}@test"],
        settings_env(settings),
        log,
    )
    worker.wait_for(" ready.")
    return worker


def wait_for_status(
    client: httpx.Client | Any, experiment_id: str, statuses: set[str], timeout: float = HANG_S
) -> dict[str, Any]:
    """Poll GET /v1/experiments/{id} until its status is in `statuses`."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/v1/experiments/{experiment_id}").json()
        if body.get("status") in statuses:
            return body
        time.sleep(0.2)
    raise TimeoutError(f"{experiment_id} still {body.get('status')} after {timeout}s: {body}")


def cap_sqlite_at_its_size(url: str) -> None:
    """From now on, the SQLite database at `url` cannot grow: `PRAGMA max_page_count` at its
    present page count on every connection the process's engine opens, so a write that needs
    a new page fails as a full disk does (SQLITE_FULL, "database or disk is full")."""
    from sqlalchemy import event

    from core.store.db import get_engine

    engine = get_engine(url)
    with engine.connect() as conn:
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())

    def cap(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(engine, "connect", cap)
    engine.dispose()  # pooled connections opened before the cap are not reused
