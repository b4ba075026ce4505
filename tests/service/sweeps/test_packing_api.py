"""`packing` on POST /v1/sweeps, and claiming a pack atomically (no worker: store calls)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, update

from core.settings import Settings
from core.spec.packing import pack_key
from core.store import packs
from core.store.db import get_engine, session_scope
from core.store.models import Experiment, utcnow
from service.app import create_app
from tests.support import canonical_spec


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def _body(grid: dict, seeds: list[int], packing: Any = None, **base: Any) -> dict[str, Any]:
    spec = canonical_spec(training={"epochs": 1}, **base)
    del spec["name"], spec["seed"]
    body = {"name": "p", "base_spec": spec, "grid": grid, "seeds": seeds}
    return body if packing is None else {**body, "packing": packing}


def _packs(sweep: dict) -> Counter[str | None]:
    return Counter(row["pack_id"] for row in sweep["experiments"])


def test_members_that_differ_in_packable_fields_share_packs_of_at_most_k(
    api: TestClient,
) -> None:
    grid = {"activation.params.sigma": [0.1, 0.3], "optimizer.lr": [0.01, 0.003]}
    created = api.post("/v1/sweeps", json=_body(grid, [0, 1, 2], {"max_members": 5}))
    assert created.status_code == 201, created.text
    sweep = created.json()
    assert sweep["packing"] == {"max_members": 5}
    assert sorted(_packs(sweep).values()) == [2, 5, 5]  # 12 packable experiments
    assert api.get(f"/v1/sweeps/{sweep['id']}").json()["experiments"] == sweep["experiments"]


def test_only_packable_differences_share_a_pack(api: TestClient) -> None:
    grid = {"activation.name": ["relu", "noisy_relu"]}  # the unit's name is not packable
    sweep = api.post("/v1/sweeps", json=_body(grid, [0, 1, 2], {"max_members": 16})).json()
    assert sorted(_packs(sweep).values()) == [3, 3]


def test_unpackable_and_unpacked_sweeps_have_no_packs(api: TestClient) -> None:
    dropout = {"arch": "mlp", "hidden": [100, 100], "dropout": 0.1}
    grid = {"activation.params.sigma": [0.1, 0.3]}
    sweep = api.post("/v1/sweeps", json=_body(grid, [0, 1], {}, model=dropout)).json()
    assert _packs(sweep) == {None: 4} and sweep["packing"] == {"max_members": 16}
    plain = api.post("/v1/sweeps", json=_body(grid, [0, 1])).json()
    assert _packs(plain) == {None: 4} and plain["packing"] is None


@pytest.mark.parametrize(
    ("packing", "path"),
    [({"max_members": 0}, "packing.max_members"), ({"size": 4}, "packing.size")],
)
def test_bad_packing_is_a_422_naming_the_field(api: TestClient, packing: dict, path: str) -> None:
    response = api.post("/v1/sweeps", json=_body({}, [0, 1], packing))
    assert response.status_code == 422, response.text
    assert path in response.text
    assert api.get("/v1/sweeps").json()["items"] == []


def test_pack_key_ignores_exactly_the_packable_fields() -> None:
    spec = canonical_spec()
    other = canonical_spec(seed=7, name="x", tags=["t"])
    other["activation"]["params"]["sigma"] = 0.9
    other["noise_schedule"].update(start=0.5, end=0.1)
    other["optimizer"].update(lr=0.5, weight_decay=0.1)
    assert pack_key(spec) == pack_key(other) is not None
    for section, key, value in [
        ("optimizer", "name", "sgd"),
        ("noise_schedule", "kind", "linear"),
        ("training", "batch_size", 50),
        ("model", "hidden", [100]),
    ]:
        changed = canonical_spec()
        changed[section][key] = value
        assert pack_key(changed) != pack_key(spec), key
    assert pack_key(canonical_spec(training={"grad_clip": 1.0})) is None


def _pack_ids(settings: Settings, api: TestClient) -> tuple[str, list[str]]:
    grid = {"activation.params.sigma": [0.1, 0.3]}
    sweep = api.post("/v1/sweeps", json=_body(grid, [0, 1], {"max_members": 4})).json()
    ids = [row["id"] for row in sweep["experiments"]]
    return sweep["experiments"][0]["pack_id"], ids


def _claim(settings: Settings, pack_id: str) -> list:
    with session_scope(settings.resolved_database_url) as session:
        return packs.claim_pack(session, pack_id, worker="w", lease_seconds=60)


def test_a_pack_is_claimed_whole_and_only_once(settings: Settings, api: TestClient) -> None:
    pack_id, ids = _pack_ids(settings, api)
    claims = _claim(settings, pack_id)
    assert sorted(c.experiment_id for c in claims) == sorted(ids)
    assert _claim(settings, pack_id) == []
    with session_scope(settings.resolved_database_url) as session:  # the worker died
        past = utcnow() - timedelta(seconds=1)
        session.execute(update(Experiment).values(lease_expires_at=past))
    again = _claim(settings, pack_id)
    assert sorted(c.token for c in again) == sorted(c.token + 1 for c in claims)


def test_two_workers_racing_for_a_pack_never_split_it(settings: Settings, api: TestClient) -> None:
    pack_id, ids = _pack_ids(settings, api)
    url = settings.resolved_database_url
    first_claimed, second_trying, results = threading.Event(), threading.Event(), {}
    racer = threading.current_thread()

    # The second worker's locking statement (BEGIN IMMEDIATE on SQLite, SELECT ... FOR UPDATE
    # on Postgres) is sent while the first's transaction is still open: the first commits
    # only once it has seen that statement go out, so the race is run every time.
    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if threading.current_thread() is racer and (
            "BEGIN IMMEDIATE" in statement or "FOR UPDATE" in statement
        ):
            second_trying.set()

    def first() -> None:
        with session_scope(url) as session:
            results["first"] = packs.claim_pack(session, pack_id, worker="a", lease_seconds=60)
            first_claimed.set()
            results["raced"] = second_trying.wait(300)

    event.listen(get_engine(url), "before_cursor_execute", seen)
    try:
        thread = threading.Thread(target=first)
        thread.start()
        assert first_claimed.wait(300)
        results["second"] = _claim(settings, pack_id)
        thread.join()
    finally:
        event.remove(get_engine(url), "before_cursor_execute", seen)
    assert results["raced"]
    assert len(results["first"]) == len(ids) and results["second"] == []
