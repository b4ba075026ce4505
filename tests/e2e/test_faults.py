"""Faults injected into real processes: the database keeps every experiment exactly once.

- a worker SIGKILLed mid-training: another worker resumes it from its checkpoint;
- the broker flushed while experiments are queued: the reaper re-sends them;
- the same task delivered twice at once: one execution writes, nothing is duplicated;
- SIGTERM: the worker checkpoints, hands the experiment back, and takes no new one.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.queue import send_run
from core.settings import Settings
from core.store.db import session_scope
from core.store.models import Metric
from tests.support import (
    HANG_S,
    Process,
    canonical_spec,
    learnt,
    series,
    start_worker,
    wait_for_epoch,
    wait_for_status,
)

pytestmark = pytest.mark.integration

# Short leases so a dead worker is noticed in seconds rather than a minute.
FAST = {
    "lease_seconds": 4,
    "heartbeat_seconds": 1,
    "reaper_interval_seconds": 1,
    "queued_grace_seconds": 3,
}
SPEC = canonical_spec(training={"epochs": 6, "batch_size": 100, "checkpoint_interval_s": 0})


def _metric_rows(settings: Settings, experiment_id: str) -> int:
    with session_scope(settings.resolved_database_url) as session:
        query = (
            select(func.count()).select_from(Metric).where(Metric.experiment_id == experiment_id)
        )
        return int(session.execute(query).scalar_one())


def _wait_for_count(workers: list[Process], needle: str, count: int) -> int:
    """How often `needle` is in the workers' logs, once it is there `count` times."""
    deadline = time.monotonic() + HANG_S  # only a hang gets here
    while (seen := sum(w.output().count(needle) for w in workers)) < count:
        assert time.monotonic() < deadline, f"{needle!r} seen {seen} times, not {count}"
        time.sleep(0.1)
    return seen


def _status_events(api: TestClient, experiment_id: str) -> list[str | None]:
    events = api.get(f"/v1/experiments/{experiment_id}/events").json()["events"]
    return [e["status"] for e in events if e["kind"] == "status"]


def test_sigkilled_worker_is_resumed_elsewhere_with_identical_metrics(
    api: TestClient, fast: Settings, tmp_path: Path
) -> None:
    first = start_worker(fast, tmp_path / "w1.log", name="w1")
    exp = api.post("/v1/experiments", json=SPEC).json()
    wait_for_epoch(api, exp["id"], 2)
    first.stop(signal.SIGKILL)
    second = start_worker(fast, tmp_path / "w2.log", name="w2")
    try:
        done = wait_for_status(api, exp["id"], {"succeeded", "failed"})
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2
        assert any(
            "resumed from checkpoint" in (e["message"] or "")
            for e in api.get(f"/v1/experiments/{exp['id']}/events").json()["events"]
        )
        assert "lease expired; re-queued" in str(
            api.get(f"/v1/experiments/{exp['id']}/events").json()
        )
        # The same spec, uninterrupted, on the surviving worker.
        clean = api.post("/v1/experiments", json=SPEC).json()
        clean_done = wait_for_status(api, clean["id"], {"succeeded", "failed"})
    finally:
        second.stop()
    assert clean_done["attempts"] == 1
    resumed, uninterrupted = series(api, exp["id"]), series(api, clean["id"])
    assert learnt(resumed) == learnt(uninterrupted)  # every point of every metric, bit for bit
    assert done["summary"]["test/acc"] == clean_done["summary"]["test/acc"]
    assert _metric_rows(fast, exp["id"]) == _metric_rows(fast, clean["id"])


def test_flushed_broker_loses_no_queued_experiment(
    api: TestClient, fast: Settings, tmp_path: Path
) -> None:
    spec = canonical_spec(dataset={"name": "moons"}, training={"epochs": 1})
    ids = [api.post("/v1/experiments", json={**spec, "seed": s}).json()["id"] for s in range(4)]
    url = fast.resolved_broker_url
    client = (
        redis.Redis(unix_socket_path=url.removeprefix("redis+socket://"))
        if url.startswith("redis+socket://")
        else redis.Redis.from_url(url)
    )
    assert client.llen(fast.queue) == 4
    client.flushdb()  # messages and kombu's bindings gone, as after a restart without persistence
    assert client.llen(fast.queue) == 0
    worker = start_worker(fast, tmp_path / "w.log")
    try:
        for experiment_id in ids:
            done = wait_for_status(api, experiment_id, {"succeeded", "failed"})
            assert done["status"] == "succeeded", done
            assert done["attempts"] == 1
    finally:
        worker.stop()


def test_duplicate_delivery_runs_once(api: TestClient, fast: Settings, tmp_path: Path) -> None:
    workers = [start_worker(fast, tmp_path / f"w{i}.log", name=f"w{i}") for i in (1, 2)]
    try:
        spec = canonical_spec(training={"epochs": 3})
        exp = api.post("/v1/experiments", json=spec).json()
        for _ in range(3):  # two more deliveries of the same message, at once
            send_run(fast, exp["id"])
        done = wait_for_status(api, exp["id"], {"succeeded", "failed"})
        # The duplicates are consumed and skipped, whenever the workers get to them.
        skipped = _wait_for_count(workers, "nothing this worker may claim", 3)
    finally:
        for w in workers:
            w.stop()
    assert skipped >= 3
    assert done["status"] == "succeeded" and done["attempts"] == 1
    assert _status_events(api, exp["id"]) == ["queued", "running", "succeeded"]
    curves = series(api, exp["id"])
    assert all(
        len(points) == 3
        for name, points in curves.items()
        if "/" in name and not name.startswith(("act/", "grad/"))
    )
    assert _metric_rows(fast, exp["id"]) == sum(len(p) for p in curves.values())


def test_sigterm_checkpoints_and_hands_the_experiment_back(
    api: TestClient, fast: Settings, tmp_path: Path
) -> None:
    first = start_worker(fast, tmp_path / "w1.log", name="w1")
    spec = canonical_spec(training={"epochs": 400})
    exp = api.post("/v1/experiments", json=spec).json()
    wait_for_epoch(api, exp["id"], 1)
    waiting = api.post("/v1/experiments", json={**spec, "seed": 1}).json()
    code = first.stop(signal.SIGTERM)
    assert code == 0, first.output()[-3000:]
    row = api.get(f"/v1/experiments/{exp['id']}").json()
    assert row["status"] == "queued", row
    assert row["status_reason"] is None
    assert "resumes from checkpoint" in row["status_message"]
    # The stopping worker took no new experiment: the one queued behind was never claimed.
    behind = api.get(f"/v1/experiments/{waiting['id']}").json()
    assert behind["status"] == "queued" and behind["attempts"] == 0, behind
    api.post(f"/v1/experiments/{waiting['id']}/cancel")
    second = start_worker(fast, tmp_path / "w2.log", name="w2")
    try:
        deadline = time.monotonic() + HANG_S
        while "resumed from checkpoint" not in str(
            api.get(f"/v1/experiments/{exp['id']}/events").json()
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        api.post(f"/v1/experiments/{exp['id']}/cancel")
        wait_for_status(api, exp["id"], {"cancelled"})
    finally:
        second.stop()


def test_wall_time_limit_fails_as_timeout(api: TestClient, fast: Settings, tmp_path: Path) -> None:
    worker = start_worker(fast, tmp_path / "w.log")
    try:
        # 2000 epochs take minutes; 20 s leaves room for a first evaluation even on a
        # loaded machine (at 5 s, a 2-core box under load timed out before the first one).
        spec = canonical_spec(training={"epochs": 2000, "time_limit_s": 20})
        exp = api.post("/v1/experiments", json=spec).json()
        done = wait_for_status(api, exp["id"], {"succeeded", "failed"})
    finally:
        worker.stop()
    assert done["status"] == "failed" and done["status_reason"] == "timeout"
    assert len(series(api, exp["id"]).get("val/acc", [])) >= 1
