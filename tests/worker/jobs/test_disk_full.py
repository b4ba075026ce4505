"""A full disk fails a run by name and hands its lease back at once (issue 32, finding 2).

The checkpoint volume is a real full filesystem: a 4 KiB tmpfs mounted over the worker's
checkpoint directory in a user and mount namespace of its own (`unshare`, no root needed
where unprivileged user namespaces are allowed), so the checkpoint write meets the kernel's
ENOSPC under torch's zip writer. The full database is SQLite refusing to grow past its
`max_page_count`: SQLITE_FULL, the engine's own condition.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from core.settings import Settings
from core.spec import ExperimentSpec
from core.store import experiments as repo
from core.store import lifecycle
from core.store.db import get_engine, session_scope
from core.store.models import Attempt, Event, Experiment
from tests.scratch import scratch_database
from tests.support import (
    Process,
    canonical_spec,
    cap_sqlite_at_its_size,
    settings_env,
    wait_for_status,
)
from worker.jobs.attempt import StoreCallbacks, finish

NAMESPACE = ["unshare", "--user", "--map-root-user", "--mount"]
SMALL = canonical_spec(
    dataset={"name": "moons", "num_samples": 400},
    model={"arch": "mlp", "hidden": [16]},
    training={"epochs": 2, "batch_size": 50},
)


def _namespaces_or_skip() -> None:
    probe = subprocess.run([*NAMESPACE, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no user namespace to mount a full tmpfs in: {probe.stderr.decode()}")


def _worker_on_a_full_volume(settings: Settings, log: Path) -> Process:
    """`actlab worker` whose checkpoint directory is a 4 KiB tmpfs (no checkpoint fits)."""
    directory = settings.resolved_checkpoint_dir
    directory.mkdir(parents=True, exist_ok=True)
    mount = 'mount -t tmpfs -o size=4k actlab-full "$0" && exec "$@"'
    command = [sys.executable, "-m", "actlab", "worker", "--name", "full@test"]
    worker = Process(
        [*NAMESPACE, "sh", "-c", mount, str(directory), *command], settings_env(settings), log
    )
    worker.wait_for(" ready.")
    return worker


def _assert_lease_handed_back(url: str, experiment_id: str) -> None:
    with session_scope(url) as session:
        row = session.get(Experiment, experiment_id)
        assert row is not None
        assert row.lease_owner is None and row.lease_expires_at is None
        ended = session.scalars(
            select(Attempt.ended_at).where(Attempt.experiment_id == experiment_id)
        ).all()
        assert ended and all(at is not None for at in ended)


def test_a_checkpoint_that_does_not_fit_fails_the_run_as_disk_full(
    settings: Settings, client: TestClient, tmp_path: Path
) -> None:
    _namespaces_or_skip()
    worker = _worker_on_a_full_volume(settings, tmp_path / "worker.log")
    try:
        exp = client.post("/v1/experiments", json=SMALL).json()
        done = wait_for_status(client, exp["id"], {"succeeded", "failed"})
    finally:
        worker.stop()
    assert done["status"] == "failed", done
    assert done["status_reason"] == "disk_full", done
    message = done["status_message"]
    # The directory, as clients may see it, and what did not fit in how much room.
    assert f" in <checkpoint_dir>/{exp['id']}" in message, message
    sizes = re.search(r"it needs (\d+) bytes, (\d+) bytes are free", message)
    assert sizes is not None, message
    needed, free = map(int, sizes.groups())
    assert needed > free, message
    assert "inline_container" not in message
    _assert_lease_handed_back(settings.resolved_database_url, exp["id"])
    # The metrics written before it are kept.
    assert client.get(f"/v1/experiments/{exp['id']}/metrics").json()["series"]


@pytest.mark.own_backend
def test_a_full_database_fails_the_run_as_disk_full_and_hands_the_lease_back(
    tmp_path: Path,
) -> None:
    url = scratch_database(None, tmp_path)  # SQLite whatever the configuration: its pragma
    settings = Settings(
        database_url=url,
        broker_url="redis://127.0.0.1:1/0",  # never used: a failed run sends nothing
        checkpoint_dir=tmp_path / "checkpoints",
        data_dir=tmp_path / "data",
        lease_seconds=600,
        auth_enabled=False,
    )
    with session_scope(url) as session:
        experiment_id = repo.create(session, spec=ExperimentSpec.model_validate(SMALL)).id
    with session_scope(url) as session:
        claim = lifecycle.claim(session, experiment_id, worker="w", lease_seconds=600)
    assert claim is not None
    callbacks = StoreCallbacks(claim, settings)
    cap_sqlite_at_its_size(url)
    # Fill the events table too, so that the status event cannot be written either.
    with pytest.raises(OperationalError):
        for i in range(100_000):
            with session_scope(url) as session:
                repo.add_event(session, experiment_id, "log", f"filler {i}")
    with session_scope(url) as session:
        events = session.scalar(select(func.count()).select_from(Event))
    values = {f"act/layer{i}/mean": float(i) for i in range(200)}
    with pytest.raises(OperationalError) as refused:
        for step in range(1, 1000):
            callbacks.on_metrics(step=step, epoch=1, values=values)

    status = finish(claim, callbacks, settings, refused.value, time.monotonic())

    assert status == "failed"
    with session_scope(url) as session:
        row = session.get(Experiment, experiment_id)
        assert row is not None
        assert (row.status, row.status_reason) == ("failed", "disk_full")
        assert "database or disk is full" in (row.status_message or "")
        # Ended without its status event: there was no room for one.
        assert session.scalar(select(func.count()).select_from(Event)) == events
    _assert_lease_handed_back(url, experiment_id)
    get_engine(url).dispose()
