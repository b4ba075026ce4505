"""Optuna searches with a real worker: the sampler asks each trial from a study rebuilt from
the database, the same seed asks the same trials, and with a `halving` block the trials
pause at rungs and the best resume from their checkpoints."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from service.app import create_app
from tests.support import HANG_S, canonical_spec, learnt, series, start_worker
from worker.reaper import reap_once

pytestmark = pytest.mark.integration

FAST = {"lease_seconds": 6, "heartbeat_seconds": 0.5, "reaper_interval_seconds": 1}

SPACE = {
    "optimizer.lr": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True},
    "noise_schedule.kind": {"type": "categorical", "choices": ["constant", "cosine", "linear"]},
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
    assert sorted(e["status"] for e in done["experiments"]) == ["pruned", "pruned", "succeeded"]
    assert [(r["rung"], r["reached"], r["promoted"], r["pruned"]) for r in done["rungs"]] == [
        (0, 3, 1, 2),
        (1, 1, 0, 0),
    ]
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
