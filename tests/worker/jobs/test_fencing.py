"""Checkpoint files are fenced like every other write: a stale attempt cannot repoint them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from core.artifacts import checkpoint_path
from core.settings import Settings
from core.spec import ExperimentSpec
from core.store import experiments as repo
from core.store import lifecycle
from core.store.db import session_scope
from core.store.models import Experiment, utcnow
from tests.support import canonical_spec
from worker.jobs.attempt import StoreCallbacks
from worker.reaper import reap_once


def _claim(settings: Settings, experiment_id: str) -> lifecycle.Claim:
    with session_scope(settings.resolved_database_url) as session:
        claim = lifecycle.claim(session, experiment_id, worker="w", lease_seconds=60)
        assert claim is not None
        return claim


def _stored_checkpoint(settings: Settings, experiment_id: str) -> str | None:
    with session_scope(settings.resolved_database_url) as session:
        row = session.get(Experiment, experiment_id)
        assert row is not None
        return row.checkpoint_path


def _write(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"checkpoint")
    return path


def test_a_stale_attempt_cannot_repoint_the_checkpoint(settings: Settings) -> None:
    with session_scope(settings.resolved_database_url) as session:
        experiment_id = repo.create(
            session, spec=ExperimentSpec.model_validate(canonical_spec())
        ).id
    first = _claim(settings, experiment_id)
    first_file = _write(checkpoint_path(settings, first))
    StoreCallbacks(first, settings).on_checkpoint(path=first_file, step=10, epoch=1)
    assert _stored_checkpoint(settings, experiment_id) == f"{experiment_id}/ckpt-{first.token}.pt"

    # The first worker is presumed dead; a second attempt claims the experiment.
    with session_scope(settings.resolved_database_url) as session:
        session.execute(update(Experiment).values(lease_expires_at=utcnow() - timedelta(1)))
    assert reap_once(settings) == 1
    second = _claim(settings, experiment_id)
    second_cb = StoreCallbacks(second, settings)
    assert second_cb.recorded == first_file  # it resumes from what the store points at
    second_file = _write(checkpoint_path(settings, second))
    assert second_file != first_file

    # The stale first attempt wakes up: its checkpoint record is refused ...
    with pytest.raises(lifecycle.LeaseLost):
        StoreCallbacks(first, settings).on_checkpoint(path=first_file, step=20, epoch=2)
    second_cb.on_checkpoint(path=second_file, step=30, epoch=3)
    stored = _stored_checkpoint(settings, experiment_id)
    assert stored == f"{experiment_id}/ckpt-{second.token}.pt"
    # ... and the file it was resumed from, no longer referenced, is gone.
    assert not first_file.exists() and second_file.exists()
