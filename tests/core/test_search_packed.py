"""Packed adaptive sweeps (core/search.py) on a real database, without a worker: a rung's
members start in packs, and the members of a pack promoted together are packed anew; an
Optuna search asks a pack's worth of trials at once.
(tests/e2e/test_search.py trains one for real.)"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from core import search
from core.settings import Settings
from core.store.db import session_scope
from core.store.models import Experiment
from tests.core.test_search import SIGMAS, _decide, _finish, _pause, _rows
from tests.support import canonical_spec

pytestmark = pytest.mark.backend


def _packed(client: TestClient, kind: str) -> dict[str, Any]:
    """Nine arms of one seed, in packs of three; a rung at 1 epoch keeps the best three."""
    base = canonical_spec(training={"epochs": 9})
    del base["name"], base["seed"]
    body = {
        "name": f"packed-{kind}",
        "base_spec": base,
        "grid": {"activation.params.sigma": SIGMAS},
        "seeds": [0],
        "search": {"kind": kind, "metric": "val/acc", "reduction_factor": 3},
        "packing": {"max_members": 3},
    }
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize("kind", ["successive_halving", "asha"])
def test_a_packed_search_starts_in_packs_and_repacks_the_promoted(
    client: TestClient, settings: Settings, kind: str
) -> None:
    sweep = _packed(client, kind)
    old = {e["id"]: e["pack_id"] for e in sweep["experiments"]}
    assert all(old.values()) and len(set(old.values())) == 3  # 9 arms, packs of 3
    for i, e in enumerate(sweep["experiments"]):
        _pause(settings, e, float(i))  # the last arms are the best: 6, 7 and 8
    promoted = set(_decide(settings, sweep["id"]))
    rows = _rows(settings, sweep["id"])
    assert {r.sweep_arm for r in rows.values() if r.id in promoted} == {
        e["label"] for e in sweep["experiments"][6:]
    }
    for r in rows.values():
        if r.id in promoted:  # a pack of its own: old packmates cannot hold it back
            assert r.status == "queued" and r.pack_id not in old.values()
        else:  # asha: paused until the search ends (another arm may yet rank below them)
            assert r.status == {"asha": "paused"}.get(kind, "pruned"), r.status
            assert r.pack_id == old[r.id]
    assert len({rows[i].pack_id for i in promoted}) == 1  # promoted together, packed together


def _optuna_packed(client: TestClient, space: dict[str, Any], **over: Any) -> dict[str, Any]:
    """An Optuna search of two seeds a trial in packs of four members: two trials a pack."""
    base = canonical_spec(training={"epochs": 9})
    del base["name"], base["seed"]
    search = {"kind": "optuna", "n_trials": 6, "space": space, "seed": 3, **over}
    body = {
        "name": "optuna-packed",
        "base_spec": base,
        "seeds": [0, 1],
        "search": search,
        "packing": {"max_members": 4},
    }
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    return response.json()


PACKABLE = {
    "activation.params.sigma": {"type": "float", "low": 0.0, "high": 2.0},
    "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
}


def _packs(experiments: list[dict[str, Any]]) -> dict[str | None, list[tuple[int, int]]]:
    """pack id -> its members as (trial, seed)."""
    out: dict[str | None, list[tuple[int, int]]] = {}
    for e in experiments:
        out.setdefault(e["pack_id"], []).append((e["point"]["trial"], e["seed"]))
    return out


def test_an_optuna_search_with_packing_asks_a_pack_of_trials_at_once_and_again_the_same(
    client: TestClient, settings: Settings
) -> None:
    sweep = _optuna_packed(client, PACKABLE, parallel=4, sampler="tpe", n_startup_trials=2)
    # Four trials in flight, two to a pack of four (each trial's two seeds together).
    assert _packs(sweep["experiments"]) == {
        sweep["experiments"][0]["pack_id"]: [(0, 0), (0, 1), (1, 0), (1, 1)],
        sweep["experiments"][4]["pack_id"]: [(2, 0), (2, 1), (3, 0), (3, 1)],
    }
    assert None not in _packs(sweep["experiments"])
    # Packed trials are told apart as unpacked ones are: by their number and point.
    assert len({e["label"] for e in sweep["experiments"]}) == 4
    first = [e for e in sweep["experiments"] if e["point"]["trial"] == 0]
    for e in first:  # one trial's first member ends: no room for a whole pack yet
        _finish(settings, e["id"], 0.5)
        assert _decide(settings, sweep["id"]) == []
    second = [e for e in sweep["experiments"] if e["point"]["trial"] == 1]
    for e in second:
        _finish(settings, e["id"], 0.7)
    # Two trials ended: the next two are asked as one pack; asked again the same after a
    # rollback (the study is rebuilt from the database).
    with session_scope(settings.resolved_database_url) as session:
        asked = search.decide(session, sweep["id"])
        points = [session.get(Experiment, i).sweep_point for i in asked]
        session.rollback()
    again = _decide(settings, sweep["id"])
    rows = _rows(settings, sweep["id"])
    assert [rows[i].sweep_point for i in again] == points
    assert [(p["trial"], rows[i].sweep_seed) for i, p in zip(again, points, strict=True)] == [
        (4, 0), (4, 1), (5, 0), (5, 1)
    ]  # fmt: skip
    assert len({rows[i].pack_id for i in again}) == 1
    assert rows[again[0]].pack_id not in {e["pack_id"] for e in sweep["experiments"]}
    view = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert view["trials_left"] == 0 and view["size"] == 12
    assert len(view["aggregate"]) == 6


def test_an_optuna_search_packs_only_the_trials_that_may_train_together(
    client: TestClient,
) -> None:
    kinds = {"type": "categorical", "choices": ["constant", "cosine"]}
    space = {**PACKABLE, "noise_schedule.kind": kinds}
    sweep = _optuna_packed(client, space, parallel=6, sampler="random")
    by_trial: dict[int, set[str | None]] = {}
    for e in sweep["experiments"]:
        by_trial.setdefault(e["point"]["trial"], set()).add(e["pack_id"])
    assert all(len(p) == 1 and None not in p for p in by_trial.values())  # seeds together
    kind = "noise_schedule.kind"
    assert {e["point"][kind] for e in sweep["experiments"]} == {"constant", "cosine"}
    for pack, members in _packs(sweep["experiments"]).items():
        kinds = {e["point"][kind] for e in sweep["experiments"] if e["pack_id"] == pack}
        assert len(kinds) == 1, (pack, members)  # another schedule kind does not pack
    assert len(_packs(sweep["experiments"])) >= 3  # 6 trials, 2 to a pack at most


def test_a_packed_optuna_search_with_rungs_repacks_the_promoted(
    client: TestClient, settings: Settings
) -> None:
    halving = {"reduction_factor": 3, "min_resource": 1, "unit": "epochs"}
    sweep = _optuna_packed(
        client, PACKABLE, parallel=6, n_trials=6, sampler="random", halving=halving
    )
    old = {e["id"]: e["pack_id"] for e in sweep["experiments"]}
    assert len(set(old.values())) == 3 and None not in old.values()
    for e in sweep["experiments"]:  # trial 5 is the best: the top third of six trials
        _pause(settings, e, float(e["point"]["trial"]))
    promoted = _decide(settings, sweep["id"])
    rows = _rows(settings, sweep["id"])
    assert {rows[i].sweep_point["trial"] for i in promoted} == {4, 5}
    assert len({rows[i].pack_id for i in promoted}) == 1  # promoted together, packed together
    assert rows[promoted[0]].pack_id not in old.values()
