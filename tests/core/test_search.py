"""Rung decisions of adaptive sweeps (core/search.py) on a real database, without a worker:
members are paused at their rungs by hand with their metric, then the sweep decides.
(tests/e2e/test_search.py trains them for real.)"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from core import search
from core.settings import Settings
from core.store import metrics
from core.store.db import session_scope
from core.store.models import Experiment, Status
from tests.support import canonical_spec

pytestmark = pytest.mark.backend

SIGMAS = [0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0]


def _sweep(client: TestClient, kind: str, seeds: list[int], **over: Any) -> dict[str, Any]:
    base = canonical_spec(training={"epochs": 9})
    del base["name"], base["seed"]
    body = {
        "name": f"search-{kind}",
        "base_spec": base,
        "grid": {"activation.params.sigma": SIGMAS},
        "seeds": seeds,
        "search": {"kind": kind, "metric": "val/acc", "reduction_factor": 3, **over},
    }
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _pause(settings: Settings, experiment: dict[str, Any], value: float) -> None:
    """What a worker leaves at a rung: the metric up to the rung's step, status paused."""
    with session_scope(settings.resolved_database_url) as session:
        row = session.get(Experiment, experiment["id"])
        assert row is not None and row.rung_step is not None
        metrics.insert_points(
            session, row.id, step=row.rung_step, epoch=1, values={"val/acc": value}
        )
        session.execute(
            update(Experiment).where(Experiment.id == row.id).values(status=Status.paused.value)
        )


def _decide(settings: Settings, sweep_id: str) -> list[str]:
    with session_scope(settings.resolved_database_url) as session:
        return search.decide(session, sweep_id)


def _rows(settings: Settings, sweep_id: str) -> dict[str, Experiment]:
    with session_scope(settings.resolved_database_url) as session:
        rows = session.query(Experiment).filter(Experiment.sweep_id == sweep_id).all()
        session.expunge_all()
        return {r.id: r for r in rows}


def test_rungs_grow_by_eta_and_end_at_the_run(client: TestClient) -> None:
    sweep = _sweep(client, "successive_halving", [0])
    # 9 epochs of 36 steps: rungs at 1 and 3 epochs, then the end.
    assert [(r["rung"], r["resource"], r["step"]) for r in sweep["rungs"]] == [
        (0, 1, 36),
        (1, 3, 108),
        (2, 9, None),
    ]
    assert {e["rung"] for e in sweep["experiments"]} == {0}


def test_successive_halving_waits_for_the_rung_then_promotes_the_best_third_by_arm_mean(
    client: TestClient, settings: Settings
) -> None:
    sweep = _sweep(client, "successive_halving", [0, 1])
    by_arm: dict[str, list[dict]] = {}
    for e in sweep["experiments"]:
        by_arm.setdefault(e["label"], []).append(e)
    arms = sorted(by_arm)
    # Arm i's seeds score i and i + 0.5, except one lucky seed of the worst arm.
    for i, arm in enumerate(arms):
        first, second = by_arm[arm]
        _pause(settings, first, 100.0 if i == 0 else float(i))
        if arm != arms[-1]:
            _pause(settings, second, i + 0.5)
            assert _decide(settings, sweep["id"]) == []  # the rung is not complete yet
    _pause(settings, by_arm[arms[-1]][1], len(arms) - 1 + 0.5)
    promoted = _decide(settings, sweep["id"])
    rows = _rows(settings, sweep["id"])
    # Means: arm 0 has (100 + 0.5) / 2 = 50.25 (its lucky seed), then arms 8 and 7.
    winners = {arms[0], arms[-1], arms[-2]}
    assert {rows[i].sweep_arm for i in promoted} == winners and len(promoted) == 6
    for row in rows.values():
        if row.sweep_arm in winners:
            assert (row.status, row.rung, row.rung_step) == ("queued", 1, 108)
        else:
            assert row.status == "pruned" and "ranked" in (row.status_message or "")
    assert _decide(settings, sweep["id"]) == []  # idempotent
    view = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert view["rungs"][0] == {
        "rung": 0,
        "resource": 1,
        "step": 36,
        "reached": 18,
        "waiting": 0,
        "promoted": 6,
        "pruned": 12,
    }
    assert view["status"] == "running"  # queued members remain
    assert sum(a["n_pruned"] for a in view["aggregate"]) == 12


def test_asha_promotes_as_soon_as_an_arm_is_in_the_top_third_so_far(
    client: TestClient, settings: Settings
) -> None:
    sweep = _sweep(client, "asha", [0])
    exps = sorted(sweep["experiments"], key=lambda e: e["label"])
    for value, e in zip([5.0, 1.0], exps[:2], strict=True):
        _pause(settings, e, value)
    assert _decide(settings, sweep["id"]) == []  # 2 arms reached: floor(2 / 3) = 0
    _pause(settings, exps[2], 3.0)
    assert _decide(settings, sweep["id"]) == [exps[0]["id"]]  # 3 reached: the best goes on
    assert _rows(settings, sweep["id"])[exps[0]["id"]].rung == 1
    for e in exps[3:]:
        _pause(settings, e, 0.0)
    _decide(settings, sweep["id"])
    rows = _rows(settings, sweep["id"])
    # 9 arms reached: 3 promoted in all (the first, then the 3.0 and the 1.0 ones).
    assert sum(r.rung == 1 for r in rows.values()) == 3
    assert all(r.status == "paused" for r in rows.values() if r.rung == 0)


def test_asha_prunes_what_still_waits_when_nothing_can_run(
    client: TestClient, settings: Settings
) -> None:
    sweep = _sweep(client, "asha", [0], min_resource=3)  # rungs at 3 epochs, then the end
    for i, e in enumerate(sweep["experiments"]):
        _pause(settings, e, float(i))
    promoted = _decide(settings, sweep["id"])
    assert len(promoted) == 3
    with session_scope(settings.resolved_database_url) as session:  # the promoted end
        session.execute(
            update(Experiment)
            .where(Experiment.id.in_(promoted))
            .values(status=Status.succeeded.value)
        )
    _decide(settings, sweep["id"])
    statuses = sorted(r.status for r in _rows(settings, sweep["id"]).values())
    assert statuses == ["pruned"] * 6 + ["succeeded"] * 3
    assert client.get(f"/v1/sweeps/{sweep['id']}").json()["status"] == "succeeded"


@pytest.mark.parametrize(
    ("search", "path"),
    [
        ({"kind": "hyperband"}, "search.kind"),
        ({"kind": "asha", "reduction_factor": 1}, "search.reduction_factor"),
        ({"kind": "asha", "min_resource": 0}, "search.min_resource"),
        ({"kind": "asha", "unit": "hours"}, "search.unit"),
        ({"kind": "asha", "colour": 1}, "search.colour"),
        ({"kind": "optuna", "n_trials": 3, "space": {}}, "search"),
        (
            {"kind": "optuna", "space": {"optimizer.lr": {"type": "float", "low": 0, "high": 1}}},
            "search",
        ),
        (
            {
                "kind": "optuna",
                "n_trials": 3,
                "space": {"optimizer..lr": {"type": "int", "low": 0, "high": 9}},
            },
            "search.space",
        ),
        (
            {
                "kind": "optuna",
                "n_trials": 3,
                "space": {"seed": {"type": "int", "low": 0, "high": 9}},
            },
            "search.space",
        ),
        (
            {
                "kind": "optuna",
                "n_trials": 3,
                "space": {"optimizer.lr": {"type": "float", "low": 0, "high": 1, "log": True}},
            },
            "search.space.optimizer.lr",
        ),
        (
            {
                "kind": "optuna",
                "n_trials": 3,
                "sampler": "bohb",
                "space": {"optimizer.lr": {"type": "float", "low": 0, "high": 1}},
            },
            "search.sampler",
        ),
        ({"kind": "asha", "n_trials": 3}, "search"),
    ],
)
def test_a_bad_search_is_a_422_naming_the_field(
    client: TestClient, search: dict[str, Any], path: str
) -> None:
    base = canonical_spec()
    del base["name"], base["seed"]
    body = {"name": "bad", "base_spec": base, "grid": {}, "seeds": [0], "search": search}
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 422, response.text
    assert path in [e["path"] for e in response.json()["errors"]], response.json()


def test_the_reaper_decides_a_rung_a_dead_worker_left_undecided(
    client: TestClient, settings: Settings
) -> None:
    """A worker that dies between writing `paused` and deciding leaves the rung as it is:
    the reaper's next pass (on any worker) decides it."""
    from worker.reaper import reap_once

    sweep = _sweep(client, "successive_halving", [0])
    for i, e in enumerate(sweep["experiments"]):
        _pause(settings, e, float(i))
    reap_once(settings)
    rows = _rows(settings, sweep["id"])
    assert sorted(r.status for r in rows.values()) == ["pruned"] * 6 + ["queued"] * 3


def test_a_paused_member_can_be_cancelled_and_the_rung_decides_without_it(
    client: TestClient, settings: Settings
) -> None:
    sweep = _sweep(client, "successive_halving", [0])
    exps = sweep["experiments"]
    for i, e in enumerate(exps[:-1]):
        _pause(settings, e, float(i))
    _pause(settings, exps[-1], 99.0)
    assert client.post(f"/v1/experiments/{exps[-1]['id']}/cancel").json()["status"] == "cancelled"
    promoted = _decide(settings, sweep["id"])
    # 8 arms left: floor(8 / 3) = 2 go on (the best two of the rest), the cancelled does not.
    assert len(promoted) == 2 and exps[-1]["id"] not in promoted


_KILL_MID_DECISION = """
import os, signal, sys
from core import search
from core.store.db import session_scope
with session_scope(sys.argv[1]) as session:
    promoted = search.decide(session, sys.argv[2])
    assert promoted, "the rung should promote"
    session.flush()  # the UPDATEs are sent, the transaction is open
    os.kill(os.getpid(), signal.SIGKILL)  # the worker dies before it commits
"""


def test_a_worker_killed_during_a_rung_decision_loses_nothing(
    client: TestClient, settings: Settings
) -> None:
    """SIGKILL of a process in the middle of a decision (its UPDATEs sent, not committed):
    the database rolls them back, and the reaper's next pass decides the rung once."""
    from worker.reaper import reap_once

    sweep = _sweep(client, "successive_halving", [0])
    for i, e in enumerate(sweep["experiments"]):
        _pause(settings, e, float(i))
    url, sweep_id = settings.resolved_database_url, sweep["id"]
    died = subprocess.run([sys.executable, "-c", _KILL_MID_DECISION, url, sweep_id], check=False)
    assert died.returncode == -signal.SIGKILL
    assert {r.status for r in _rows(settings, sweep_id).values()} == {"paused"}
    reap_once(settings)
    rows = _rows(settings, sweep_id)
    assert sorted(r.status for r in rows.values()) == ["pruned"] * 6 + ["queued"] * 3
    assert _decide(settings, sweep_id) == []  # decided once


def _optuna(client: TestClient, **over: Any) -> dict[str, Any]:
    base = canonical_spec(training={"epochs": 9})
    del base["name"], base["seed"]
    space = {
        "activation.params.sigma": {"type": "float", "low": 0.0, "high": 2.0},
        "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    }
    search = {"kind": "optuna", "n_trials": 6, "space": space, "seed": 3, **over}
    body = {"name": "optuna", "base_spec": base, "seeds": [0, 1], "search": search}
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _finish(settings: Settings, experiment_id: str, value: float) -> None:
    with session_scope(settings.resolved_database_url) as session:
        metrics.insert_points(session, experiment_id, step=324, epoch=9, values={"val/acc": value})
        session.execute(
            update(Experiment)
            .where(Experiment.id == experiment_id)
            .values(status=Status.succeeded.value)
        )


@pytest.mark.parametrize("sampler", ["tpe", "cmaes", "gp", "random", "qmc"])
def test_an_optuna_study_is_rebuilt_from_the_database_and_asks_the_same_after_a_rollback(
    client: TestClient, settings: Settings, sampler: str
) -> None:
    """Every sampler: trials end (their value is the mean over seeds), and the next ask, made
    in a transaction that is rolled back (a process that died), is asked again the same."""
    sweep = _optuna(client, sampler=sampler, n_startup_trials=2, parallel=2)
    assert len(sweep["experiments"]) == 4  # two trials in flight, two seeds each
    for round_ in range(2):
        view = client.get(f"/v1/sweeps/{sweep['id']}").json()
        for e in view["experiments"]:
            if e["status"] == "queued":
                _finish(settings, e["id"], e["point"]["activation.params.sigma"] + round_)
        with session_scope(settings.resolved_database_url) as session:
            asked = search.decide(session, sweep["id"])
            points = [session.get(Experiment, i).sweep_point for i in asked]
            session.rollback()
        again = _decide(settings, sweep["id"])
        with session_scope(settings.resolved_database_url) as session:
            assert [session.get(Experiment, i).sweep_point for i in again] == points
        assert len(again) == 4  # the two trials that ended are replaced, two seeds each
    view = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert [t["trial"] for t in view["search"]["trials"]] == list(range(6))
    assert view["trials_left"] == 0 and view["size"] == 12


def test_an_optuna_search_validates_every_edge_of_its_space(client: TestClient) -> None:
    base = canonical_spec()
    del base["name"], base["seed"]
    space = {"activation.params.sigma": {"type": "float", "low": 0.0, "high": 2.0},
             "model.hidden": {"type": "categorical", "choices": [[100, 100], [0]]}}  # fmt: skip
    search = {"kind": "optuna", "n_trials": 4, "space": space}
    body = {"name": "bad-edge", "base_spec": base, "seeds": [0], "search": search}
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 422, response.text
    paths = [e["path"] for e in response.json()["errors"]]
    assert any(p.startswith("search.space[") and "model.hidden" in p for p in paths), paths


def test_compare_after_a_fraction_drops_the_rungs_before_it(client: TestClient) -> None:
    sweep = _sweep(client, "successive_halving", [0], compare_after=0.3)
    # 9 epochs of 36 steps: rungs at 36 and 108; 0.3 of 324 steps is 98 (rounded up).
    assert sweep["search"]["compare_from_step"] == 98
    assert [(r["rung"], r["resource"], r["step"]) for r in sweep["rungs"]] == [
        (0, 3, 108),
        (1, 9, None),
    ]
    assert {e["rung"] for e in sweep["experiments"]} == {0}


@pytest.mark.parametrize(
    ("kind", "fraction"),
    # The multiplier (start 1, end 0) at step s is read at t = s - 1 of T = 324 steps; it is
    # annealed once it stays within 0.05: linear 1 - t/T <= 0.05, cosine (1 + cos(pi t/T))/2
    # <= 0.05; constant has nothing to anneal.
    [("linear", 0.95), ("cosine", math.acos(-0.9) / math.pi), ("constant", None)],
)
def test_annealed_is_the_first_step_every_arm_stays_within_5_percent_of_its_end(
    client: TestClient, kind: str, fraction: float | None
) -> None:
    base = canonical_spec(training={"epochs": 9})
    base["noise_schedule"] = {"kind": kind, "start": 1.0, "end": 0.0}
    del base["name"], base["seed"]
    body = {
        "name": f"annealed-{kind}",
        "base_spec": base,
        "grid": {"optimizer.lr": [0.01, 0.001]},
        "seeds": [0],
        "search": {"kind": "asha", "compare_after": "annealed"},
    }
    sweep = client.post("/v1/sweeps", json=body).json()
    expected = 0 if fraction is None else math.ceil(fraction * 324 - 1e-9) + 1
    assert sweep["search"]["compare_from_step"] == expected


def test_compare_within_ranks_each_schedule_among_its_own(
    client: TestClient, settings: Settings
) -> None:
    """Constant noise leads early at every sigma; ranked within their schedule kind, the
    best cosine and the best linear arm go on too."""
    base = canonical_spec(training={"epochs": 9})
    del base["name"], base["seed"]
    body = {
        "name": "within",
        "base_spec": base,
        "grid": {
            "noise_schedule.kind": ["constant", "cosine", "linear"],
            "activation.params.sigma": [0.1, 0.3, 1.0],
        },
        "seeds": [0],
        "search": {"kind": "successive_halving", "compare_within": ["noise_schedule.kind"]},
    }
    sweep = client.post("/v1/sweeps", json=body).json()
    lead = {"constant": 0.9, "cosine": 0.5, "linear": 0.4}
    for e in sweep["experiments"]:
        point = e["point"]
        _pause(settings, e, lead[point["noise_schedule.kind"]] - point["activation.params.sigma"])
    promoted = _decide(settings, sweep["id"])
    rows = _rows(settings, sweep["id"])
    went_on = sorted(
        (rows[i].sweep_point["noise_schedule.kind"], rows[i].sweep_point["activation.params.sigma"])
        for i in promoted
    )
    assert went_on == [("constant", 0.1), ("cosine", 0.1), ("linear", 0.1)]
    bad = client.post(
        "/v1/sweeps",
        json={**body, "search": {**body["search"], "compare_within": ["optimizer.lr"]}},
    )
    assert bad.status_code == 422 and "compare_within" in bad.text and "'optimizer.lr'" in bad.text
