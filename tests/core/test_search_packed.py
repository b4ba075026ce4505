"""Packed adaptive sweeps (core/search.py) on a real database, without a worker: a rung's
members start in packs, and the members of a pack promoted together are packed anew.
(tests/e2e/test_search.py trains one for real.)"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from tests.core.test_search import SIGMAS, _decide, _pause, _rows
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


def test_an_optuna_search_with_packing_is_a_422_that_says_why(client: TestClient) -> None:
    base = canonical_spec()
    del base["name"], base["seed"]
    space = {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}}
    search: dict[str, Any] = {"kind": "optuna", "n_trials": 3, "space": space}
    body = {"name": "p", "base_spec": base, "seeds": [0, 1], "search": search, "packing": {}}
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 422, response.text
    assert "trial by trial" in response.text
