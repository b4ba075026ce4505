"""Forks with real workers: a fork that changes nothing reproduces its parent exactly, one
that turns the noise off differs after k and not before, a fork of a fork, a fork killed
mid-training and resumed elsewhere, and the disk a run's default retention takes."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.artifacts import kept_dir
from core.settings import Settings
from tests.support import (
    canonical_spec,
    learnt,
    series,
    start_worker,
    wait_for_epoch,
    wait_for_status,
)

pytestmark = pytest.mark.integration

FAST = {
    "lease_seconds": 4,
    "heartbeat_seconds": 1,
    "reaper_interval_seconds": 1,
    "queued_grace_seconds": 3,
}
EPOCHS = 6
PARENT = canonical_spec(training={"epochs": EPOCHS, "checkpoint_interval_s": 0})
NOISE_OFF = {"noise_schedule": {"kind": "constant", "start": 0.0, "end": 0.0}}


def _done(api: TestClient, experiment_id: str) -> dict[str, Any]:
    body = wait_for_status(api, experiment_id, {"succeeded", "failed", "cancelled"})
    assert body["status"] == "succeeded", body
    return body


def _fork(api: TestClient, experiment_id: str, **request: Any) -> dict[str, Any]:
    response = api.post(f"/v1/experiments/{experiment_id}/fork", json=request)
    assert response.status_code == 201, response.text
    return response.json()


def _split(points: dict[str, list[dict]], k: int) -> tuple[dict, dict]:
    """Each series' points up to step k, and after it."""
    before = {n: [p for p in ps if p["step"] <= k] for n, ps in points.items()}
    after = {n: [p for p in ps if p["step"] > k] for n, ps in points.items()}
    return {n: ps for n, ps in before.items() if ps}, {n: ps for n, ps in after.items() if ps}


def test_forks_reproduce_their_parent_and_noise_off_differs_only_after_k(
    api: TestClient, fast: Settings, tmp_path: Path
) -> None:
    worker = start_worker(fast, tmp_path / "w.log")
    try:
        parent = api.post("/v1/experiments", json=PARENT).json()
        _done(api, parent["id"])
        steps = api.get(f"/v1/experiments/{parent['id']}/checkpoints").json()["steps"]
        assert len(steps) == EPOCHS  # every evaluation's checkpoint, by default
        k = steps[EPOCHS // 2 - 1]  # the midpoint
        same = _fork(api, parent["id"], at_step=k)
        quiet = _fork(api, parent["id"], at_step=k, overrides=NOISE_OFF)
        for fork in (same, quiet):
            _done(api, fork["id"])
        # A fork of the unchanged fork: above its fork step from its own checkpoint, below
        # it from the parent's; both continue exactly as the parent did.
        later = _fork(api, same["id"], at_step=steps[-2])
        earlier = _fork(api, same["id"], at_step=steps[0])
        assert later["fork"]["checkpoint"].startswith(same["id"])
        assert earlier["fork"]["checkpoint"].startswith(parent["id"])
        for fork in (later, earlier):
            _done(api, fork["id"])
    finally:
        worker.stop()
    theirs = learnt(series(api, parent["id"]))
    for fork in (same, later, earlier):
        assert learnt(series(api, fork["id"])) == theirs, fork["fork"]
    ours = learnt(series(api, quiet["id"]))
    assert _split(ours, k)[0] == _split(theirs, k)[0]  # before k: the parent's points
    after_ours, after_theirs = _split(ours, k)[1], _split(theirs, k)[1]
    assert [p["step"] for p in after_ours["train/loss"]] == [
        p["step"] for p in after_theirs["train/loss"]
    ]
    for a, b in zip(after_ours["train/loss"], after_theirs["train/loss"], strict=True):
        assert a["value"] != b["value"]
    assert {p["value"] for p in after_ours["noise/scale"]} == {0.0}
    body = api.get(f"/v1/experiments/{quiet['id']}/metrics").json()
    assert body["inherited_through_step"] == k
    # The default retention's cost: one checkpoint per evaluation (the note quotes it).
    files = sorted(kept_dir(fast, parent["id"]).glob("step-*.pt"))
    sizes = [f.stat().st_size for f in files]
    assert len(files) == EPOCHS and max(sizes) - min(sizes) < 0.01 * max(sizes)
    print(f"default retention: {len(files)} files, {sum(sizes)} bytes ({sizes[0]} each)")


def test_a_fork_killed_mid_training_resumes_with_the_parents_curves(
    api: TestClient, fast: Settings, tmp_path: Path
) -> None:
    first = start_worker(fast, tmp_path / "w1.log", name="w1")
    parent = api.post("/v1/experiments", json=PARENT).json()
    _done(api, parent["id"])
    steps = api.get(f"/v1/experiments/{parent['id']}/checkpoints").json()["steps"]
    fork = _fork(api, parent["id"], at_step=steps[0])
    wait_for_epoch(api, fork["id"], 3)  # the parent's first, then two of its own
    first.stop(signal.SIGKILL)
    second = start_worker(fast, tmp_path / "w2.log", name="w2")
    try:
        done = _done(api, fork["id"])
    finally:
        second.stop()
    assert done["attempts"] == 2
    assert learnt(series(api, fork["id"])) == learnt(series(api, parent["id"]))


def test_a_packed_fork_sweep_runs_and_compares_its_arms_paired_by_seed(
    api: TestClient, fast: Settings, tmp_path: Path
) -> None:
    worker = start_worker(fast, tmp_path / "w.log")
    try:
        spec = canonical_spec(
            training={"epochs": 4}, noise_schedule={"kind": "constant", "start": 1.0}
        )
        parent = api.post("/v1/experiments", json=spec).json()
        _done(api, parent["id"])
        k = api.get(f"/v1/experiments/{parent['id']}/checkpoints").json()["steps"][1]
        body = {
            "name": "continuation",
            "fork": {"experiment_id": parent["id"], "at_step": k},
            "grid": {"noise_schedule.start": [1.0, 0.0, 2.0]},
            "seeds": [spec["seed"], 1],
            "baseline": {"noise_schedule.start": 1.0},
            "packing": {"max_members": 8},
        }
        created = api.post("/v1/sweeps", json=body)
        assert created.status_code == 201, created.text
        sweep = created.json()
        assert len({e["pack_id"] for e in sweep["experiments"]}) == 1  # one pack of six
        for e in sweep["experiments"]:
            _done(api, e["id"])
    finally:
        worker.stop()
    view = api.get(f"/v1/sweeps/{sweep['id']}").json()
    assert [a["n"] for a in view["aggregate"]] == [2, 2, 2]
    assert [c["n_pairs"] for c in view["comparisons"]] == [2, 2]
    theirs = learnt(series(api, parent["id"]))
    # The kept arm with the parent's seed is the parent's continuation (packed: equal within
    # the packing tolerance), and reads as the parent's before k.
    kept = next(
        e for e in view["experiments"]
        if e["point"] == {"noise_schedule.start": 1.0} and e["seed"] == spec["seed"]
    )  # fmt: skip
    ours = learnt(series(api, kept["id"]))
    assert _split(ours, k)[0] == _split(theirs, k)[0]
    for a, b in zip(ours["val/loss"], theirs["val/loss"], strict=True):
        assert a["step"] == b["step"] and a["value"] == pytest.approx(b["value"], rel=1e-5)
