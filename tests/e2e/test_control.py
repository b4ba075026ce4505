"""Cancel, retry and live events against a real worker."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from tests.support import HANG_S, Process, canonical_spec, wait_for_status

pytestmark = pytest.mark.integration


# One worker for the whole module (tests/conftest.py): each test reads only its own experiments.
@pytest.fixture(scope="module")
def worker(module_worker: Process) -> Process:
    return module_worker


@pytest.fixture
def client(module_client: TestClient, worker: Process) -> TestClient:
    return module_client


LONG = canonical_spec(training={"epochs": 400, "batch_size": 100})


def _wait_for_epoch(client: TestClient, experiment_id: str, epoch: int) -> None:
    deadline = time.monotonic() + HANG_S
    while time.monotonic() < deadline:
        series = client.get(
            f"/v1/experiments/{experiment_id}/metrics", params={"name": "val/acc"}
        ).json()["series"]
        if len(series.get("val/acc", [])) >= epoch:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{experiment_id} never reached epoch {epoch}")


def _events(client: TestClient, experiment_id: str) -> list[dict]:
    return client.get(f"/v1/experiments/{experiment_id}/events").json()["events"]


def test_cancel_running_then_retry_resumes_from_checkpoint(
    client: TestClient, worker: Process
) -> None:
    exp = client.post("/v1/experiments", json=LONG).json()
    _wait_for_epoch(client, exp["id"], 2)
    assert client.post(f"/v1/experiments/{exp['id']}/cancel").json()["status"] == "cancelling"
    done = wait_for_status(client, exp["id"], {"cancelled"})
    # Stopped where it was asked to (at the next heartbeat), not after its 400 epochs; how
    # many seconds that takes depends on the box's load, so no clock bounds it here.
    assert done["progress"]["epoch"] < LONG["training"]["epochs"] // 2, done["progress"]
    kept = client.get(f"/v1/experiments/{exp['id']}/metrics").json()["series"]
    assert len(kept["val/acc"]) >= 2
    assert done["attempts"] == 1

    retried = client.post(f"/v1/experiments/{exp['id']}/retry").json()
    assert retried["status"] == "queued"
    deadline = time.monotonic() + HANG_S
    while not any(
        "resumed from checkpoint" in (e["message"] or "") for e in _events(client, exp["id"])
    ):
        assert time.monotonic() < deadline, _events(client, exp["id"])
        time.sleep(0.2)
    # What the cancel left as progress is the checkpoint the retry resumed from.
    resumed = [
        e["message"] for e in _events(client, exp["id"]) if "resumed" in (e["message"] or "")
    ]
    assert resumed == [f"resumed from checkpoint at step {done['progress']['step']}"]
    cancelled = [e for e in _events(client, exp["id"]) if e["status"] == "cancelled"]
    assert cancelled[0]["message"] == "cancelled by the user"
    assert done["status_message"] == "cancelled by the user"
    client.post(f"/v1/experiments/{exp['id']}/cancel")
    final = wait_for_status(client, exp["id"], {"cancelled"})
    assert final["attempts"] == 2
    statuses = [e["status"] for e in _events(client, exp["id"]) if e["kind"] == "status"]
    assert statuses == [
        "queued",
        "running",
        "cancelling",
        "cancelled",
        "queued",
        "running",
        "cancelling",
        "cancelled",
    ]
    # The resumed attempt continued the curve: one point per epoch, no duplicates.
    epochs = [
        p["epoch"]
        for p in client.get(f"/v1/experiments/{exp['id']}/metrics").json()["series"]["val/acc"]
    ]
    assert epochs == list(range(1, len(epochs) + 1))


def test_event_stream_follows_a_run_to_its_end(client: TestClient, worker: Process) -> None:
    spec = canonical_spec(training={"epochs": 3, "batch_size": 100})
    exp = client.post("/v1/experiments", json=spec).json()
    with client.stream(
        "GET", f"/v1/experiments/{exp['id']}/events", params={"stream": "true"}
    ) as response:
        text = "".join(response.iter_text())
    assert "event: progress" in text
    assert "event: metrics" in text and '"name":"val/acc"' in text
    assert '"status":"running"' in text
    assert text.rstrip().endswith('data: {"status":"succeeded"}')
