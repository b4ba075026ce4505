"""Optuna searches with a real worker: the sampler asks each trial from a study rebuilt from
the database, the same seed asks the same trials, and with a `halving` block the trials
pause at rungs and the best resume from their checkpoints; a packed search asks a pack of
trials at once, and a fork sweep's trials are forks of its parent."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.settings import Settings
from core.store.db import session_scope
from core.store.models import Attempt
from service.app import create_app
from tests.support import HANG_S, canonical_spec, learnt, series, start_worker, wait_for_status
from worker.reaper import reap_once

pytestmark = pytest.mark.integration

FAST = {"lease_seconds": 6, "heartbeat_seconds": 0.5, "reaper_interval_seconds": 1}

SPACE = {
    "optimizer.lr": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True},
    "noise_schedule.kind": {"type": "categorical", "choices": ["constant", "cosine", "linear"]},
}
# Fields that may differ inside a pack (a schedule kind may not: docs/packing.md).
PACKABLE = {
    "optimizer.lr": SPACE["optimizer.lr"],
    "activation.params.sigma": {"type": "float", "low": 0.0, "high": 1.0},
}


def _body(name: str, epochs: int, **search: Any) -> dict[str, Any]:
    base = canonical_spec(training={"epochs": epochs, "checkpoint_interval_s": 0})
    del base["name"], base["seed"]
    search = {"kind": "optuna", "sampler": "tpe", "space": SPACE, "seed": 7, **search}
    return {"name": name, "base_spec": base, "seeds": [0], "search": search}


def _wait_done(api: TestClient, sweep_id: str) -> dict[str, Any]:
    """Poll until the sweep has asked all its trials and every member has ended."""
    deadline = time.monotonic() + HANG_S
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = api.get(f"/v1/sweeps/{sweep_id}").json()
        if body["status"] in ("succeeded", "failed", "cancelled"):
            return body
        time.sleep(0.2)
    raise TimeoutError(f"sweep {sweep_id} still {body.get('status')}: {body.get('status_counts')}")


def test_a_tpe_search_asks_its_trials_one_after_another_and_the_same_seed_asks_the_same(
    api: TestClient, fast: Settings, tmp_path: Path
) -> None:
    first = api.post("/v1/sweeps", json=_body("tpe-a", 1, n_trials=4, n_startup_trials=2))
    assert first.status_code == 201, first.text
    created = first.json()
    # Created with the first trial asked and queued; the rest come as trials end.
    assert created["size"] == 4 and created["trials_left"] == 3
    assert created["status"] == "queued" and len(created["experiments"]) == 1
    worker = start_worker(fast, tmp_path / "w.log")
    try:
        a = _wait_done(api, created["id"])
        b = _wait_done(
            api,
            api.post("/v1/sweeps", json=_body("tpe-b", 1, n_trials=4, n_startup_trials=2)).json()[
                "id"
            ],
        )
    finally:
        worker.stop()
    assert a["status"] == "succeeded", a["status_counts"]
    assert a["trials_left"] == 0 and a["status_counts"] == {"succeeded": 4}
    trials = a["search"]["trials"]
    assert [t["trial"] for t in trials] == [0, 1, 2, 3]
    assert all("system_attrs" not in t for t in trials)  # the sampler's state stays inside
    assert [r["label"] for r in a["aggregate"]] == [e["label"] for e in a["experiments"]]
    for e in a["experiments"]:  # each member trains its trial's point
        spec = api.get(f"/v1/experiments/{e['id']}").json()["spec"]
        assert spec["optimizer"]["lr"] == e["point"]["optimizer.lr"]
        assert spec["noise_schedule"]["kind"] == e["point"]["noise_schedule.kind"]
    # The same seed and the same (deterministic) results: the same trials, asked again.
    assert b["search"]["trials"] == trials
    assert [r["mean"] for r in b["aggregate"]] == [r["mean"] for r in a["aggregate"]]


def test_optuna_with_halving_prunes_at_rungs_and_resumes_the_promoted_across_an_api_restart(
    api: TestClient, fast: Settings, tmp_path: Path
) -> None:
    halving = {"reduction_factor": 3, "min_resource": 1, "unit": "epochs"}
    body = _body("tpe-asha", 3, n_trials=3, parallel=3, n_startup_trials=3, halving=halving)
    with TestClient(create_app(fast)) as first:  # an API that is gone before anything runs
        created = first.post("/v1/sweeps", json=body).json()
    assert len(created["experiments"]) == 3  # three in flight at once
    worker = start_worker(fast, tmp_path / "w.log")
    try:
        done = _wait_done(api, created["id"])
        winner = next(e for e in done["experiments"] if e["status"] == "succeeded")
        alone = api.post(
            "/v1/experiments", json=api.get(f"/v1/experiments/{winner['id']}").json()["spec"]
        ).json()
        _wait_done_experiment(api, alone["id"])
    finally:
        worker.stop()
    _assert_one_of_three_promoted(done)
    # The promoted trial resumed from its rung's checkpoint: the curve of a run never paused.
    assert learnt(series(api, winner["id"])) == learnt(series(api, alone["id"]))
    for e in done["experiments"]:
        if e["status"] == "pruned":  # kept, up to its rung
            assert [p["step"] for p in series(api, e["id"])["val/acc"]] == [36]


def _wait_done_experiment(api: TestClient, experiment_id: str) -> None:
    deadline = time.monotonic() + HANG_S
    while api.get(f"/v1/experiments/{experiment_id}").json()["status"] not in (
        "succeeded",
        "failed",
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(experiment_id)
        time.sleep(0.2)


def test_cancelling_an_optuna_search_stops_it_asking(api: TestClient, fast: Settings) -> None:
    created = api.post("/v1/sweeps", json=_body("tpe-cancel", 1, n_trials=50)).json()
    cancelled = api.post(f"/v1/sweeps/{created['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["trials_left"] == 0
    assert body["size"] == 1 and body["status_counts"] == {"cancelled": 1}
    reap_once(fast)  # a reaper pass looks at the sweep and asks nothing more
    again = api.get(f"/v1/sweeps/{created['id']}").json()
    assert again["size"] == 1 and again["status_counts"] == {"cancelled": 1}


def test_a_packed_search_asks_a_pack_of_trials_at_a_time_and_the_same_seed_asks_the_same(
    api: TestClient, fast: Settings, tmp_path: Path
) -> None:
    """Two trials to a pack (one seed each): the second pair is asked only once the first has
    ended, from what both scored, so the search is as reproducible as one trial at a time."""

    def body(name: str) -> dict[str, Any]:
        search = {"n_trials": 4, "parallel": 2, "n_startup_trials": 2, "space": PACKABLE}
        return {**_body(name, 1, **search), "packing": {"max_members": 2}}

    first = api.post("/v1/sweeps", json=body("tpe-packed-a"))
    assert first.status_code == 201, first.text
    created = first.json()
    assert len(created["experiments"]) == 2 and created["trials_left"] == 2
    packed = {e["pack_id"] for e in created["experiments"]}
    assert len(packed) == 1 and None not in packed
    worker = start_worker(fast, tmp_path / "w.log")
    try:
        a = _wait_done(api, created["id"])
        b = _wait_done(api, api.post("/v1/sweeps", json=body("tpe-packed-b")).json()["id"])
    finally:
        worker.stop()
    assert a["status"] == "succeeded" and a["status_counts"] == {"succeeded": 4}
    packs: dict[str, list[int]] = {}
    for e in a["experiments"]:
        packs.setdefault(e["pack_id"], []).append(e["point"]["trial"])
        spec = api.get(f"/v1/experiments/{e['id']}").json()["spec"]
        assert spec["optimizer"]["lr"] == e["point"]["optimizer.lr"]  # its trial's point
    assert sorted(sorted(p) for p in packs.values()) == [[0, 1], [2, 3]]
    with session_scope(fast.resolved_database_url) as session:  # each trained in its pack
        ids = [e["id"] for e in a["experiments"]]
        shares = session.scalars(select(Attempt.share).where(Attempt.experiment_id.in_(ids)))
        assert sorted(shares) == [0.5] * 4  # one attempt each, half of a worker's time
    assert b["search"]["trials"] == a["search"]["trials"]
    assert [r["mean"] for r in b["aggregate"]] == [r["mean"] for r in a["aggregate"]]


def test_a_packed_search_with_rungs_resumes_its_promoted_trial_to_the_unpaused_curve(
    api: TestClient, fast: Settings, tmp_path: Path
) -> None:
    halving = {"reduction_factor": 3, "min_resource": 1, "unit": "epochs"}
    search = {
        "n_trials": 3,
        "parallel": 3,
        "n_startup_trials": 3,
        "halving": halving,
        "space": PACKABLE,
    }
    body = {**_body("tpe-packed-asha", 3, **search), "packing": {"max_members": 3}}
    created = api.post("/v1/sweeps", json=body).json()
    start = {e["id"]: e["pack_id"] for e in created["experiments"]}
    assert len(start) == 3 and len(set(start.values())) == 1 and None not in start.values()
    worker = start_worker(fast, tmp_path / "w.log")
    try:
        done = _wait_done(api, created["id"])
        winner = next(e for e in done["experiments"] if e["status"] == "succeeded")
        spec = api.get(f"/v1/experiments/{winner['id']}").json()["spec"]
        # The winner's spec in a pack that never pauses (a member's step is the same bits
        # in a pack of any size, docs/packing.md): its seed 0 is the curve to match.
        base = {k: v for k, v in spec.items() if k not in ("name", "seed")}
        unpaused = api.post(
            "/v1/sweeps",
            json={"name": "unpaused", "base_spec": base, "seeds": [0, 1], "packing": {}},
        ).json()
        for e in unpaused["experiments"]:
            _wait_done_experiment(api, e["id"])
    finally:
        worker.stop()
    _assert_one_of_three_promoted(done)
    assert winner["pack_id"] != start[winner["id"]] and winner["promoted_at"] == [36]
    theirs = next(e for e in unpaused["experiments"] if e["seed"] == 0)
    assert theirs["pack_id"] is not None
    assert learnt(series(api, winner["id"])) == learnt(series(api, theirs["id"]))
    for e in done["experiments"]:
        if e["status"] == "pruned":  # stopped at the rung, in its first pack, metrics kept
            assert e["pack_id"] == start[e["id"]]
            assert [p["step"] for p in series(api, e["id"])["val/acc"]] == [36]


def test_a_fork_sweeps_trials_start_from_the_parents_checkpoint_and_halve_from_the_fork(
    api: TestClient, fast: Settings, tmp_path: Path
) -> None:
    spec = canonical_spec(
        training={"epochs": 4, "checkpoint_interval_s": 0},
        noise_schedule={"kind": "constant", "start": 1.0},
    )
    space = {
        "noise_schedule.start": {"type": "float", "low": 0.0, "high": 2.0},
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
    }
    halving = {"reduction_factor": 3, "min_resource": 1, "unit": "epochs"}
    worker = start_worker(fast, tmp_path / "w.log")
    try:
        parent = api.post("/v1/experiments", json=spec).json()
        wait_for_status(api, parent["id"], {"succeeded", "failed"})
        k = api.get(f"/v1/experiments/{parent['id']}/checkpoints").json()["steps"][1]  # 72
        body = {
            "name": "fork-tpe",
            "fork": {"experiment_id": parent["id"], "at_step": k},
            "seeds": [spec["seed"]],
            "search": {
                "kind": "optuna",
                "seed": 7,
                "n_trials": 3,
                "parallel": 3,
                "space": space,
                "halving": halving,
            },
        }
        created = api.post("/v1/sweeps", json=body)
        assert created.status_code == 201, created.text
        done = _wait_done(api, created.json()["id"])
        winner = next(e for e in done["experiments"] if e["status"] == "succeeded")
        # The same fork, never paused, for the comparison.
        point = {p: v for p, v in winner["point"].items() if p != "trial"}
        alone = api.post(
            f"/v1/experiments/{parent['id']}/fork",
            json={"at_step": k, "overrides": {**point, "seed": winner["seed"]}},
        ).json()
        wait_for_status(api, alone["id"], {"succeeded", "failed"})
    finally:
        worker.stop()
    rung = k + 36  # one epoch after the fork
    assert done["status"] == "succeeded", done["status_counts"]
    assert sorted(e["status"] for e in done["experiments"]) == ["pruned", "pruned", "succeeded"]
    assert [(r["rung"], r["resource"], r["step"], r["reached"]) for r in done["rungs"]] == [
        (0, 1, rung, 3),
        (1, 2, None, 1),
    ]
    for e in done["experiments"]:  # each trial is a fork of the parent with its point
        fork = api.get(f"/v1/experiments/{e['id']}").json()
        assert fork["parent_id"] == parent["id"] and fork["fork"]["at_step"] == k
        assert fork["spec"]["noise_schedule"]["start"] == e["point"]["noise_schedule.start"]
        assert fork["spec"]["optimizer"]["lr"] == e["point"]["optimizer.lr"]
        own = [p["step"] for p in series(api, e["id"])["val/acc"] if p["step"] > k]
        if e["status"] == "pruned":  # trained from the fork to its rung, no further
            assert own == [rung], own
    # Promoted: resumed from its own checkpoint at the rung; its curve is the plain fork's,
    # to the bit (the parent's points up to k, then its own).
    said = [
        e["message"] for e in api.get(f"/v1/experiments/{winner['id']}/events").json()["events"]
    ]
    assert any(f"resumed from checkpoint at step {rung}" in m for m in said), said
    assert learnt(series(api, winner["id"])) == learnt(series(api, alone["id"]))


def _assert_one_of_three_promoted(done: dict) -> None:
    """Three trials reached the first rung; one went on to the end, two were pruned."""
    assert sorted(e["status"] for e in done["experiments"]) == ["pruned", "pruned", "succeeded"]
    assert [(r["rung"], r["reached"], r["promoted"], r["pruned"]) for r in done["rungs"]] == [
        (0, 3, 1, 2),
        (1, 1, 0, 0),
    ]
