"""Idempotency-Key: the same key and body replay; another body is a 422."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from core.settings import Settings
from core.store.db import session_scope
from core.store.models import IdempotencyRecord, utcnow
from service.app import create_app
from tests.support import canonical_spec
from worker.reaper import reap_once


def _count(client: TestClient) -> int:
    return len(client.get("/v1/experiments").json()["items"])


def test_same_key_same_body_returns_first_response(client: TestClient) -> None:
    headers = {"Idempotency-Key": "abc-1"}
    first = client.post("/v1/experiments", json=canonical_spec(), headers=headers)
    again = client.post("/v1/experiments", json=canonical_spec(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert _count(client) == 1


def test_same_key_other_body_is_422(client: TestClient) -> None:
    headers = {"Idempotency-Key": "abc-2"}
    client.post("/v1/experiments", json=canonical_spec(), headers=headers)
    other = client.post("/v1/experiments", json=canonical_spec(seed=7), headers=headers)
    assert other.status_code == 422
    assert "Idempotency-Key" in other.json()["detail"]
    assert _count(client) == 1


def test_keys_expire(client: TestClient, settings: Settings) -> None:
    headers = {"Idempotency-Key": "abc-3"}
    client.post("/v1/experiments", json=canonical_spec(), headers=headers)
    with session_scope(settings.resolved_database_url) as session:
        session.execute(update(IdempotencyRecord).values(expires_at=utcnow() - timedelta(1)))
    again = client.post("/v1/experiments", json=canonical_spec(), headers=headers)
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert _count(client) == 2


def test_a_rejected_request_does_not_burn_the_key(client: TestClient) -> None:
    headers = {"Idempotency-Key": "abc-4"}
    bad = client.post(
        "/v1/experiments", json=canonical_spec(training={"epochs": 0}), headers=headers
    )
    assert bad.status_code == 422
    good = client.post("/v1/experiments", json=canonical_spec(), headers=headers)
    assert good.status_code == 201


def test_sweeps_honour_the_key(client: TestClient) -> None:
    body = {
        "name": "idem",
        "base_spec": {k: v for k, v in canonical_spec().items() if k != "seed"},
        "grid": {"activation.name": ["relu", "noisy_relu"]},
        "seeds": [0, 1],
    }
    headers = {"Idempotency-Key": "sweep-1"}
    first = client.post("/v1/sweeps", json=body, headers=headers)
    again = client.post("/v1/sweeps", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert _count(client) == 4
    other = client.post("/v1/sweeps", json={**body, "seeds": [5]}, headers=headers)
    assert other.status_code == 422


def test_ttl_setting_sets_expiry_and_the_reaper_purges(settings: Settings) -> None:
    settings = settings.model_copy(update={"idempotency_ttl_seconds": 120})
    with TestClient(create_app(settings)) as client:
        for key in ("ttl-1", "ttl-2"):
            client.post("/v1/experiments", json=canonical_spec(), headers={"Idempotency-Key": key})
    url = settings.resolved_database_url
    with session_scope(url) as session:
        records = session.scalars(select(IdempotencyRecord)).all()
        lifetimes = [(r.expires_at - utcnow()).total_seconds() for r in records]
        assert len(lifetimes) == 2 and all(110 < s <= 120 for s in lifetimes)
        session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "ttl-1")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    reap_once(settings)
    with session_scope(url) as session:
        assert session.scalars(select(IdempotencyRecord.key)).all() == ["ttl-2"]
