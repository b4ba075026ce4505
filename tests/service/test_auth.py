"""API keys on a shared box: owners see only their own work; admins see all."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.settings import Settings
from core.store.db import session_scope
from core.store.models import ApiKey
from service import auth
from service.app import create_app
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
    assert client.get("/v1/plugins").status_code == 401  # plugin details do


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
        [sys.executable, "-m", "actlab", "keys", "create", "dave", "--admin"],
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


def test_auth_is_on_by_default() -> None:
    assert Settings.model_fields["auth_enabled"].default is True


def test_every_route_of_another_owners_work_is_404(secured: tuple[TestClient, Settings]) -> None:
    client, settings = secured
    alice, bob = _key(settings, "alice"), _key(settings, "bob")
    exp = client.post("/v1/experiments", json=canonical_spec(), headers=alice).json()
    client.post(f"/v1/experiments/{exp['id']}/cancel", headers=alice)  # cancelled: retryable
    base = f"/v1/experiments/{exp['id']}"
    assert client.post(f"{base}/retry", headers=bob).status_code == 404
    assert client.get(f"{base}/weights", headers=bob).status_code == 404
    assert client.get(f"{base}/events", params={"stream": "true"}, headers=bob).status_code == 404
    curves = client.get("/v1/metrics/series", params={"experiment_id": exp["id"]}, headers=bob)
    assert curves.status_code == 404 and "alice" not in curves.text
    # The owner's own requests work.
    assert client.post(f"{base}/retry", headers=alice).status_code == 200
    mine = client.get("/v1/metrics/series", params={"experiment_id": exp["id"]}, headers=alice)
    assert mine.status_code == 200


def test_the_owner_streams_events_with_auth_on(secured: tuple[TestClient, Settings]) -> None:
    client, settings = secured
    alice = _key(settings, "alice")
    exp = client.post("/v1/experiments", json=canonical_spec(), headers=alice).json()
    client.post(f"/v1/experiments/{exp['id']}/cancel", headers=alice)
    path = f"/v1/experiments/{exp['id']}/events"
    with client.stream("GET", path, params={"stream": "true"}, headers=alice) as response:
        assert response.status_code == 200
        text = "".join(response.iter_text())
    assert text.rstrip().endswith('data: {"status":"cancelled"}')


def test_sweeps_are_isolated_and_admins_see_all(secured: tuple[TestClient, Settings]) -> None:
    client, settings = secured
    alice, bob = _key(settings, "alice"), _key(settings, "bob")
    admin = _key(settings, "root", admin=True)
    base = {k: v for k, v in canonical_spec().items() if k not in ("name", "seed")}
    body = {"name": "s", "base_spec": base, "grid": {"activation.name": ["relu"]}, "seeds": [0]}
    sweep = client.post("/v1/sweeps", json=body, headers=alice).json()
    assert client.get(f"/v1/sweeps/{sweep['id']}", headers=bob).status_code == 404
    assert client.get("/v1/sweeps", headers=bob).json()["items"] == []
    assert client.get(f"/v1/sweeps/{sweep['id']}", headers=admin).status_code == 200
    assert [s["id"] for s in client.get("/v1/sweeps", headers=admin).json()["items"]] == [
        sweep["id"]
    ]


def test_the_queue_cap_is_per_owner(settings: Settings) -> None:
    settings = settings.model_copy(update={"auth_enabled": True, "max_queued_per_owner": 1})
    with TestClient(create_app(settings)) as client:
        alice, bob = _key(settings, "alice"), _key(settings, "bob")
        assert (
            client.post("/v1/experiments", json=canonical_spec(), headers=alice).status_code == 201
        )
        assert (
            client.post("/v1/experiments", json=canonical_spec(), headers=alice).status_code == 429
        )
        assert client.post("/v1/experiments", json=canonical_spec(), headers=bob).status_code == 201


def test_prometheus_metrics_need_an_admin_key_with_auth_on(
    secured: tuple[TestClient, Settings],
) -> None:
    client, settings = secured
    assert client.get("/metrics").status_code == 401
    forbidden = client.get("/metrics", headers=_key(settings, "dave"))
    assert forbidden.status_code == 403
    assert "admin" in forbidden.json()["detail"]
    allowed = client.get("/metrics", headers=_key(settings, "ops", admin=True))
    assert allowed.status_code == 200
    assert "actlab_experiments" in allowed.text


def test_a_failure_message_shows_no_server_path(settings: Settings) -> None:
    from worker.jobs.attempt import public_message

    data, checkpoints = settings.data_dir, settings.resolved_checkpoint_dir
    raw = f"FileNotFoundError: {data}/datasets/mnist/x and {checkpoints}/e"
    message = public_message(raw, settings)
    assert str(settings.data_dir) not in message
    assert "<data_dir>/datasets/mnist/x" in message and "<checkpoint_dir>/e" in message
