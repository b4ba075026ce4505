"""Adaptive sweeps with a real worker: members pause at their rung with their checkpoint,
the best arm resumes from it (its curve equals an uninterrupted run's, no step twice), and
the pruned keep their metrics; a fork sweep's rungs count from its fork step."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from tests.support import canonical_spec, learnt, series, start_worker, wait_for_status

pytestmark = pytest.mark.integration

FAST = {"lease_seconds": 6, "heartbeat_seconds": 0.5, "reaper_interval_seconds": 1}


def test_successive_halving_resumes_the_promoted_and_keeps_the_pruneds_metrics(
    api: TestClient, fast: Settings, tmp_path: Path
) -> None:
    base = canonical_spec(training={"epochs": 3, "checkpoint_interval_s": 0})
    del base["name"], base["seed"]
    body = {
        "name": "halving",
        "base_spec": base,
        "grid": {"optimizer.lr": [0.01, 0.003, 0.0001]},
        "seeds": [0],
        "search": {"kind": "successive_halving", "metric": "val/acc", "reduction_factor": 3},
    }
    sweep = api.post("/v1/sweeps", json=body).json()
    worker = start_worker(fast, tmp_path / "w.log")
    try:
        for e in sweep["experiments"]:
            wait_for_status(api, e["id"], {"succeeded", "pruned", "failed"})
        view = api.get(f"/v1/sweeps/{sweep['id']}").json()
        winner = next(e for e in view["experiments"] if e["status"] == "succeeded")
        # The same spec, never paused, for the comparison.
        alone = api.post(
            "/v1/experiments", json=api.get(f"/v1/experiments/{winner['id']}").json()["spec"]
        ).json()
        wait_for_status(api, alone["id"], {"succeeded", "failed"})
    finally:
        worker.stop()
    assert view["status"] == "succeeded", view["status_counts"]
    assert sorted(e["status"] for e in view["experiments"]) == ["pruned", "pruned", "succeeded"]
    assert view["rungs"] == [
        {"rung": 0, "resource": 1, "step": 36, "reached": 3, "waiting": 0, "promoted": 1,
         "pruned": 2},
        {"rung": 1, "resource": 3, "step": None, "reached": 1, "waiting": 0, "promoted": 0,
         "pruned": 0},
    ]  # fmt: skip
    assert learnt(series(api, winner["id"])) == learnt(series(api, alone["id"]))
    # Where each stopped and went on, for the dashboard's marks.
    assert (winner["rung"], winner["rung_step"], winner["promoted_at"]) == (1, None, [36])
    for e in view["experiments"]:
        if e["status"] == "pruned":
            assert (e["rung"], e["rung_step"], e["promoted_at"]) == (0, 36, [])
    events = api.get(f"/v1/experiments/{winner['id']}/events").json()["events"]
    said = [e["message"] for e in events]
    assert any("resumed from checkpoint at step 36" in m for m in said), said
    assert any("promoted to the end" in m for m in said), said
    for e in view["experiments"]:
        if e["status"] == "pruned":
            points = series(api, e["id"])
            assert [p["step"] for p in points["val/acc"]] == [36]  # its metrics are kept
            assert e["value"] == points["val/acc"][-1]["value"]  # the sweep's (default) metric


def test_a_packed_halving_pauses_its_packs_and_the_promoted_resume_to_the_unpaused_curves(
    api: TestClient, fast: Settings, tmp_path: Path
) -> None:
    base = canonical_spec(training={"epochs": 3, "checkpoint_interval_s": 0})
    del base["name"], base["seed"]
    grid = {"optimizer.lr": [0.01, 0.003, 0.0001]}
    body = {"name": "packed", "base_spec": base, "grid": grid, "seeds": [0, 1]}
    search = {"kind": "successive_halving", "metric": "val/acc", "reduction_factor": 3}
    halving = api.post(
        "/v1/sweeps", json={**body, "search": search, "packing": {"max_members": 6}}
    ).json()
    whole = api.post("/v1/sweeps", json={**body, "packing": {"max_members": 6}}).json()
    start = {e["id"]: e["pack_id"] for e in halving["experiments"]}
    assert len(set(start.values())) == 1 and None not in start.values()  # one pack of six
    worker = start_worker(fast, tmp_path / "w.log")
    try:
        for e in halving["experiments"] + whole["experiments"]:
            wait_for_status(api, e["id"], {"succeeded", "pruned", "failed"})
        view = api.get(f"/v1/sweeps/{halving['id']}").json()
    finally:
        worker.stop()
    assert view["status"] == "succeeded", view["status_counts"]
    assert view["status_counts"] == {"succeeded": 2, "pruned": 4}  # an arm is its two seeds
    unpaused = {(e["label"], e["seed"]): e["id"] for e in whole["experiments"]}
    for e in view["experiments"]:
        said = [x["message"] for x in api.get(f"/v1/experiments/{e['id']}/events").json()["events"]]
        assert any("paused at its rung" in m for m in said), said
        mine, theirs = series(api, e["id"]), series(api, unpaused[(e["label"], e["seed"])])
        if e["status"] == "pruned":
            assert e["pack_id"] == start[e["id"]]
            assert [p["step"] for p in mine["val/acc"]] == [36]
            assert mine["val/acc"] == theirs["val/acc"][:1]
            continue
        # Promoted: packed anew with its arm's other seed, resumed from its own checkpoint,
        # and its curves those of the pack that never paused, to the bit.
        assert e["pack_id"] != start[e["id"]] and e["promoted_at"] == [36]
        assert any("resumed from checkpoint at step 36" in m for m in said), said
        assert learnt(mine) == learnt(theirs)
    winners = [e for e in view["experiments"] if e["status"] == "succeeded"]
    assert len({e["pack_id"] for e in winners}) == 1


def test_a_fork_sweep_halves_from_the_fork_and_its_winner_continues_as_a_plain_fork(
    api: TestClient, fast: Settings, tmp_path: Path
) -> None:
    spec = canonical_spec(
        training={"epochs": 4, "checkpoint_interval_s": 0},
        noise_schedule={"kind": "constant", "start": 1.0},
    )
    worker = start_worker(fast, tmp_path / "w.log")
    try:
        parent = api.post("/v1/experiments", json=spec).json()
        wait_for_status(api, parent["id"], {"succeeded", "failed"})
        k = api.get(f"/v1/experiments/{parent['id']}/checkpoints").json()["steps"][1]  # 72
        body = {
            "name": "fork-halving",
            "fork": {"experiment_id": parent["id"], "at_step": k},
            "grid": {"noise_schedule.start": [1.0, 0.0, 2.0]},
            "seeds": [spec["seed"]],
            "search": {"kind": "successive_halving", "metric": "val/acc", "reduction_factor": 3},
        }
        created = api.post("/v1/sweeps", json=body)
        assert created.status_code == 201, created.text
        sweep = created.json()
        for e in sweep["experiments"]:
            wait_for_status(api, e["id"], {"succeeded", "pruned", "failed"})
        view = api.get(f"/v1/sweeps/{sweep['id']}").json()
        winner = next(e for e in view["experiments"] if e["status"] == "succeeded")
        # The same fork, never paused, for the comparison.
        overrides = {**winner["point"], "seed": winner["seed"]}
        alone = api.post(
            f"/v1/experiments/{parent['id']}/fork", json={"at_step": k, "overrides": overrides}
        ).json()
        wait_for_status(api, alone["id"], {"succeeded", "failed"})
    finally:
        worker.stop()
    rung = k + 36  # one epoch after the fork, not one epoch from step 0
    assert view["status"] == "succeeded", view["status_counts"]
    assert sorted(e["status"] for e in view["experiments"]) == ["pruned", "pruned", "succeeded"]
    assert [(r["rung"], r["resource"], r["step"], r["reached"]) for r in view["rungs"]] == [
        (0, 1, rung, 3),
        (1, 2, None, 1),
    ]
    assert (winner["rung"], winner["rung_step"], winner["promoted_at"]) == (1, None, [rung])
    # Promoted: resumed from its own checkpoint at the rung, and its curve is the plain
    # fork's, to the bit (the parent's points up to k, then its own).
    said = [
        e["message"] for e in api.get(f"/v1/experiments/{winner['id']}/events").json()["events"]
    ]
    assert any(f"resumed from checkpoint at step {rung}" in m for m in said), said
    assert learnt(series(api, winner["id"])) == learnt(series(api, alone["id"]))
    # Ranked on each member's own value at the rung, after the fork: the winner's is the best.
    at_rung = {}
    for e in view["experiments"]:
        own = [p for p in series(api, e["id"])["val/acc"] if p["step"] > k]
        at_rung[e["id"]] = next(p["value"] for p in own if p["step"] == rung)
        if e["status"] == "pruned":
            assert (e["rung"], e["rung_step"], e["promoted_at"]) == (0, rung, [])
            assert [p["step"] for p in own] == [rung]  # stopped at the rung, metrics kept
    assert at_rung[winner["id"]] == max(at_rung.values())
