"""API keys on a shared box: owners see only their own work; admins see all."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service import auth
from service.app import create_app
from service.settings import Settings
from service.store.db import session_scope
from service.store.models import ApiKey
from tests.support import canonical_spec, settings_env


@pytest.fixture
def secured(settings: Settings) -> Iterator[tuple[TestClient, Settings]]:
    settings = settings.model_copy(update={"auth_enabled": True})
    with TestClient(create_app(settings)) as client:
        yield client, settings


def _key(settings: Settings, owner: str, admin: bool = False) -> dict[str, str]:
    with session_scope(settings.resolved_database_url) as session:
        key = auth.create_key(session, owner=owner, admin=admin)
    return {"Authorization": f"Bearer {key}"}


def test_requests_without_a_key_get_401(secured: tuple[TestClient, Settings]) -> None:
    client, _ = secured
    response = client.get("/v1/experiments")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"].endswith("/unauthorized")
    bad = client.get("/v1/experiments", headers={"Authorization": "Bearer actlab_x_y"})
    assert bad.status_code == 401
    assert client.get("/healthz").status_code == 200  # liveness needs no key


def test_owners_are_isolated_and_admins_see_all(secured: tuple[TestClient, Settings]) -> None:
    client, settings = secured
    alice, bob = _key(settings, "alice"), _key(settings, "bob")
    admin = _key(settings, "root", admin=True)
    exp = client.post("/v1/experiments", json=canonical_spec(), headers=alice).json()
    for path in ("", "/metrics", "/events"):
        response = client.get(f"/v1/experiments/{exp['id']}{path}", headers=bob)
        assert response.status_code == 404, path
        assert "alice" not in response.text
    assert client.post(f"/v1/experiments/{exp['id']}/cancel", headers=bob).status_code == 404
    assert client.get("/v1/experiments", headers=bob).json()["items"] == []
    mine = client.get("/v1/experiments", headers=alice).json()["items"]
    assert [e["id"] for e in mine] == [exp["id"]]
    assert client.get(f"/v1/experiments/{exp['id']}", headers=admin).status_code == 200
    assert len(client.get("/v1/experiments", headers=admin).json()["items"]) == 1


def test_a_revoked_key_gets_401(secured: tuple[TestClient, Settings]) -> None:
    client, settings = secured
    headers = _key(settings, "carol")
    assert client.get("/v1/experiments", headers=headers).status_code == 200
    prefix = headers["Authorization"].split("_")[1]
    with session_scope(settings.resolved_database_url) as session:
        auth.revoke_key(session, prefix=prefix)
    response = client.get("/v1/experiments", headers=headers)
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_cli_prints_the_key_once_and_stores_only_a_hash(settings: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "keys", "create", "dave", "--admin"],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        check=True,
    )
    key = result.stdout.strip()
    assert key.startswith("actlab_")
    with session_scope(settings.resolved_database_url) as session:
        row = session.scalars(select(ApiKey)).one()
        assert row.owner == "dave" and row.admin
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert key not in (row.key_hash, row.prefix)
    with TestClient(create_app(settings.model_copy(update={"auth_enabled": True}))) as client:
        ok = client.get("/v1/experiments", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200
