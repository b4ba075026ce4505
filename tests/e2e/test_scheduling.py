"""The scheduler with real workers: preemption at a checkpoint that loses nothing, a cancel
of a preempted run, and messages that only wake workers (lost or duplicated: no matter)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.queue import send_run
from core.settings import Settings
from core.spec import ExperimentSpec
from core.store import experiments as repo
from core.store.db import session_scope
from tests.support import (
    canonical_spec,
    learnt,
    series,
    start_worker,
    wait_for_epoch,
    wait_for_status,
)

pytestmark = pytest.mark.integration

FAST = {
    "lease_seconds": 6,
    "heartbeat_seconds": 0.5,
    "reaper_interval_seconds": 1,
    "queued_grace_seconds": 3,
    "preempt_grace_seconds": 0,
}
LOW = canonical_spec(
    priority=-1, training={"epochs": 40, "batch_size": 50, "checkpoint_interval_s": 0}
)
URGENT = canonical_spec(seed=1, priority=5, training={"epochs": 1})


def _events(api: TestClient, experiment_id: str) -> list[dict]:
    return api.get(f"/v1/experiments/{experiment_id}/events").json()["events"]


def test_an_urgent_run_preempts_at_a_checkpoint_and_the_curve_is_unchanged(
    api: TestClient, fast: Settings, tmp_path: Path
) -> None:
    worker = start_worker(fast, tmp_path / "w.log")
    try:
        low = api.post("/v1/experiments", json=LOW).json()
        wait_for_epoch(api, low["id"], 2)
        urgent = api.post("/v1/experiments", json=URGENT).json()
        urgent_done = wait_for_status(api, urgent["id"], {"succeeded", "failed"})
        assert urgent_done["status"] == "succeeded", urgent_done
        low_done = wait_for_status(api, low["id"], {"succeeded", "failed"})
        assert low_done["status"] == "succeeded", low_done
        # The same spec, never preempted, for the comparison.
        clean = api.post("/v1/experiments", json=LOW).json()
        clean_done = wait_for_status(api, clean["id"], {"succeeded", "failed"})
    finally:
        worker.stop()
    statuses = [(e["status"], (e["data"] or {}).get("reason")) for e in _events(api, low["id"])]
    assert ("queued", "preempted") in statuses
    assert low_done["attempts"] == 2 and clean_done["attempts"] == 1
    waited = datetime.fromisoformat(urgent_done["started_at"]) - datetime.fromisoformat(
        urgent["created_at"]
    )
    print(f"the urgent run started {waited.total_seconds():.2f} s after its submission")
    # Every point of every learnt metric, bit for bit; sys/* are what each attempt used.
    assert learnt(series(api, low["id"])) == learnt(series(api, clean["id"]))
    assert low_done["summary"]["test/acc"] == clean_done["summary"]["test/acc"]


def test_a_preempted_run_can_be_cancelled(api: TestClient, fast: Settings, tmp_path: Path) -> None:
    worker = start_worker(fast, tmp_path / "w.log")
    try:
        low = api.post("/v1/experiments", json=LOW).json()
        wait_for_epoch(api, low["id"], 1)
        # An urgent run long enough that the preempted one stays queued until cancelled.
        long_urgent = {**URGENT, "training": {"epochs": 10_000}}  # cancelled below
        urgent = api.post("/v1/experiments", json=long_urgent).json()
        wait_for_status(api, urgent["id"], {"running"})
        back = wait_for_status(api, low["id"], {"queued"})
        assert back["status_reason"] == "preempted"
        assert api.post(f"/v1/experiments/{low['id']}/cancel").status_code == 200
        assert wait_for_status(api, low["id"], {"cancelled"})["status"] == "cancelled"
        assert api.post(f"/v1/experiments/{urgent['id']}/cancel").status_code == 200
        assert wait_for_status(api, urgent["id"], {"cancelled"})["status"] == "cancelled"
    finally:
        worker.stop()
    assert len(learnt(series(api, low["id"]))["val/acc"]) >= 1  # its metrics are kept


def test_lost_and_duplicate_messages_change_nothing(
    api: TestClient, fast: Settings, tmp_path: Path
) -> None:
    spec = canonical_spec(training={"epochs": 1})
    with session_scope(fast.resolved_database_url) as session:  # queued, its message lost
        lost = repo.create(session, spec=ExperimentSpec.model_validate(spec)).id
    sent = api.post("/v1/experiments", json=canonical_spec(seed=3, training={"epochs": 1}))
    for _ in range(3):  # and three duplicates of the other one's message
        send_run(fast, sent.json()["id"])
    worker = start_worker(fast, tmp_path / "w.log")
    try:
        done = [wait_for_status(api, i, {"succeeded", "failed"}) for i in (lost, sent.json()["id"])]
    finally:
        worker.stop()
    assert [d["status"] for d in done] == ["succeeded", "succeeded"]
    assert [d["attempts"] for d in done] == [1, 1]  # each ran once
