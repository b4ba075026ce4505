"""The queue view over HTTP: each owner sees its own work whole and others' as counts; the
knobs' limits are 422s that name the field; the queued cap holds under concurrent POSTs."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.settings import Settings
from core.store import owners, workers
from core.store.db import session_scope
from core.store.models import Experiment, Status
from service.app import create_app
from tests.support import bearer, canonical_spec


@pytest.fixture
def secured(settings: Settings) -> Iterator[tuple[TestClient, Settings]]:
    settings = settings.model_copy(update={"auth_enabled": True})
    with TestClient(create_app(settings)) as client:
        yield client, settings


def test_each_owner_sees_its_place_and_only_counts_of_others(
    secured: tuple[TestClient, Settings],
) -> None:
    client, settings = secured
    alice, bob = bearer(settings, "alice"), bearer(settings, "bob")
    admin = bearer(settings, "root", admin=True)
    with session_scope(settings.resolved_database_url) as session:
        workers.seen(session, name="gpu0", device="cpu", memory_bytes=2**34)
    theirs = [
        client.post("/v1/experiments", json=canonical_spec(seed=i), headers=alice).json()["id"]
        for i in range(3)
    ]
    mine = client.post("/v1/experiments", json=canonical_spec(), headers=bob).json()["id"]

    view = client.get("/v1/queue", headers=bob)
    assert view.status_code == 200
    body = view.json()
    assert [item["id"] for item in body["items"]] == [mine]
    assert body["others"] == {"queued": 3, "running": 0}
    assert body["workers"] == {"live": 1, "busy": 0}
    for other in theirs:  # no ids, and no names, of alice's work
        assert other not in view.text
    assert "alice" not in view.text
    place = body["items"][0]["queue"]
    # Neither has used a worker yet: alice's first run starts first (submitted first), then
    # bob's, whose turn comes before alice's second one (her first charges her usage).
    assert place["position"] == 2 and place["ahead"] == 1 and place["ahead_other_owners"] == 1
    assert place["reason"] == "fair_share"
    assert place["eta_seconds"] is None  # nothing of this workload was measured yet

    single = client.get(f"/v1/experiments/{mine}", headers=bob).json()
    assert single["queue"]["position"] == 2 and single["priority"] == 0

    everyone = client.get("/v1/queue", headers=admin).json()
    assert [item["id"] for item in everyone["items"]] == [theirs[0], mine, *theirs[1:]]
    assert [item["owner"] for item in everyone["items"]] == ["alice", "bob", "alice", "alice"]
    assert everyone["items"][0]["queue"]["reason"] == "no_worker"  # next in line
    assert everyone["items"][2]["queue"]["reason"] == "fair_share"
    assert everyone["others"] == {"queued": 0, "running": 0}


def test_a_priority_above_the_keys_limit_is_a_422_naming_the_field(
    secured: tuple[TestClient, Settings],
) -> None:
    client, settings = secured
    alice = bearer(settings, "alice")
    response = client.post("/v1/experiments", json=canonical_spec(priority=5), headers=alice)
    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"][0]["path"] == "priority"
    assert "above this key's limit of 0" in problem["detail"]
    sweep = {
        "name": "s",
        "base_spec": canonical_spec(priority=5),
        "grid": {"activation.name": ["relu"]},
        "seeds": [0],
    }
    response = client.post("/v1/sweeps", json=sweep, headers=alice)
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "base_spec.priority"
    with session_scope(settings.resolved_database_url) as session:
        owners.set_knobs(session, "alice", max_priority=5)
    created = client.post("/v1/experiments", json=canonical_spec(priority=5), headers=alice)
    assert created.status_code == 201 and created.json()["priority"] == 5
    out_of_range = client.post("/v1/experiments", json=canonical_spec(priority=101), headers=alice)
    assert out_of_range.status_code == 422
    assert out_of_range.json()["errors"][0]["path"] == "priority"


@pytest.mark.parametrize("kind", ["experiments", "sweeps"])
def test_the_queued_cap_holds_under_concurrent_posts(settings: Settings, kind: str) -> None:
    """Ten POSTs at once against a cap of 10 queued: exactly what fits is admitted (on
    Postgres the count and the insert were two steps, and 10 x 200 passed a cap of 1000)."""
    cap, posts, size = 10, 10, 3 if kind == "sweeps" else 1
    settings = settings.model_copy(update={"max_queued_per_owner": cap})
    barrier = Barrier(posts)
    with TestClient(create_app(settings)) as client:

        def post(i: int) -> int:
            if kind == "sweeps":
                body = {
                    "name": f"s{i}",
                    "base_spec": canonical_spec(),
                    "grid": {"activation.name": ["relu"]},
                    "seeds": [0, 1, 2],
                }
            else:
                body = canonical_spec(seed=i)
            barrier.wait()
            return client.post(f"/v1/{kind}", json=body).status_code

        with ThreadPoolExecutor(posts) as pool:
            codes = list(pool.map(post, range(posts)))
    with session_scope(settings.resolved_database_url) as session:
        queued = session.scalar(
            select(func.count()).where(Experiment.status == Status.queued.value)
        )
    assert codes.count(201) == cap // size
    assert codes.count(429) == posts - cap // size
    assert queued == cap // size * size
