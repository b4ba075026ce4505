"""Cancel and retry without a worker: the transitions a user can ask for."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import update

from core.settings import Settings
from core.store.db import session_scope
from core.store.models import Experiment
from tests.support import canonical_spec


def test_cancel_queued_is_immediate_and_final(client: TestClient) -> None:
    exp = client.post("/v1/experiments", json=canonical_spec()).json()
    response = client.post(f"/v1/experiments/{exp['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    again = client.post(f"/v1/experiments/{exp['id']}/cancel")
    assert again.status_code == 409 and again.json()["type"].endswith("/conflict")


def test_cancel_running_asks_the_worker(client: TestClient, settings: Settings) -> None:
    exp = client.post("/v1/experiments", json=canonical_spec()).json()
    with session_scope(settings.resolved_database_url) as session:
        session.execute(update(Experiment).values(status="running"))
    assert client.post(f"/v1/experiments/{exp['id']}/cancel").json()["status"] == "cancelling"
    # Asking twice is harmless.
    assert client.post(f"/v1/experiments/{exp['id']}/cancel").json()["status"] == "cancelling"


def test_retry_requeues_failed_and_cancelled_only(client: TestClient, settings: Settings) -> None:
    exp = client.post("/v1/experiments", json=canonical_spec()).json()
    queued = client.post(f"/v1/experiments/{exp['id']}/retry")
    assert queued.status_code == 409
    client.post(f"/v1/experiments/{exp['id']}/cancel")
    retried = client.post(f"/v1/experiments/{exp['id']}/retry").json()
    assert retried["status"] == "queued"
    with session_scope(settings.resolved_database_url) as session:
        session.execute(
            update(Experiment).values(status="failed", status_reason="error", attempts=2)
        )
    again = client.post(f"/v1/experiments/{exp['id']}/retry").json()
    assert again["status"] == "queued" and again["status_reason"] is None
    assert again["attempts"] == 2


def test_events_record_every_transition(client: TestClient) -> None:
    exp = client.post("/v1/experiments", json=canonical_spec()).json()
    client.post(f"/v1/experiments/{exp['id']}/cancel")
    client.post(f"/v1/experiments/{exp['id']}/retry")
    body = client.get(f"/v1/experiments/{exp['id']}/events").json()
    assert [e["status"] for e in body["events"]] == ["queued", "cancelled", "queued"]
    newer = client.get(
        f"/v1/experiments/{exp['id']}/events", params={"after": body["events"][0]["id"]}
    ).json()
    assert len(newer["events"]) == 2 and newer["next_after"] == body["next_after"]


def test_event_stream_of_an_ended_experiment_closes(client: TestClient) -> None:
    exp = client.post("/v1/experiments", json=canonical_spec()).json()
    client.post(f"/v1/experiments/{exp['id']}/cancel")
    with client.stream(
        "GET", f"/v1/experiments/{exp['id']}/events", headers={"Accept": "text/event-stream"}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    assert "event: status" in text and '"status":"cancelled"' in text
    assert text.rstrip().endswith('data: {"status":"cancelled"}')
