"""POST /v1/experiments/{id}/fork without a worker: the kept steps, each 422, the lineage
record, and a fork's metrics read through its parent's rows (the engine's exactness is in
tests/worker/engine/test_engine_fork.py, and with real workers in tests/e2e/test_forks.py)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core.artifacts import kept_dir, kept_name
from core.settings import Settings
from core.spec import ExperimentSpec
from core.spec.estimate import footprint, kept_checkpoints
from core.store import metrics
from core.store.db import session_scope
from core.store.models import Experiment
from service import auth
from service.app import create_app
from service.experiments import forks
from tests.support import canonical_spec


def _keep(settings: Settings, experiment_id: str, *steps: int) -> None:
    """Stand-ins for kept checkpoint files: the API lists them by name, never reads them."""
    directory = kept_dir(settings, experiment_id)
    directory.mkdir(parents=True, exist_ok=True)
    for step in steps:
        (directory / kept_name(step)).write_bytes(b"")


def _points(settings: Settings, experiment_id: str, steps: range, value: float) -> None:
    with session_scope(settings.resolved_database_url) as session:
        for step in steps:
            metrics.insert_points(
                session, experiment_id, step=step, epoch=step, values={"val/acc": value + step}
            )


@pytest.fixture
def parent(client: TestClient, settings: Settings) -> str:
    experiment_id: str = client.post("/v1/experiments", json=canonical_spec()).json()["id"]
    _keep(settings, experiment_id, 10, 20, 30)
    return experiment_id


def _fork(client: TestClient, experiment_id: str, **body: object):  # type: ignore[no-untyped-def]
    return client.post(f"/v1/experiments/{experiment_id}/fork", json=body)


def test_a_fork_records_its_lineage_and_its_spec(client: TestClient, parent: str) -> None:
    assert client.get(f"/v1/experiments/{parent}/checkpoints").json()["steps"] == [10, 20, 30]
    quiet = {"noise_schedule.kind": "constant", "noise_schedule.start": 0.0}
    response = _fork(client, parent, at_step=20, overrides=quiet)
    assert response.status_code == 201, response.text
    fork = response.json()
    assert fork["status"] == "queued" and fork["parent_id"] == parent
    assert fork["fork"] == {
        "parent_id": parent,
        "at_step": 20,
        "overrides": quiet,
        "noise_clock": "continue",
        "checkpoint": f"{parent}/kept/step-20.pt",
    }
    assert fork["spec"]["noise_schedule"]["kind"] == "constant"
    assert fork["spec"]["noise_schedule"]["start"] == 0.0
    parent_spec = client.get(f"/v1/experiments/{parent}").json()["spec"]
    assert fork["spec"]["model"] == parent_spec["model"]
    changed = "noise_schedule.kind=constant,noise_schedule.start=0.0"
    assert fork["name"] == f"{canonical_spec()['name']}@20+{changed}"
    listed = client.get("/v1/experiments", params={"parent_id": parent}).json()["items"]
    assert [e["id"] for e in listed] == [fork["id"]]


def test_a_forks_default_name_says_what_it_changed(client: TestClient, parent: str) -> None:
    """A sweep member's auto name is made from its point and seed; `parent@step` alone
    kept saying the old values once a fork changed them."""
    base = canonical_spec()["name"]
    changed = _fork(client, parent, at_step=10, overrides={"seed": 3}).json()
    assert changed["name"] == f"{base}@10+seed=3" and changed["spec"]["seed"] == 3
    assert _fork(client, parent, at_step=10).json()["name"] == f"{base}@10"
    named = _fork(client, parent, at_step=10, overrides={"seed": 3}, name="mine").json()
    assert named["name"] == "mine"


def test_a_default_name_too_long_for_its_changes_counts_them() -> None:
    parent = Experiment(id="exp_x", name="n" * 150)
    name = forks.default_name(parent, 10, {"a.b": "x" * 60, "c": 1})
    assert name == f"{'n' * 150}@10+2 changes"
    assert forks.default_name(Experiment(id="exp_x", name=None), 10, {}) == "exp_x@10"


def test_an_unknown_step_is_a_422_listing_the_kept_ones(client: TestClient, parent: str) -> None:
    response = _fork(client, parent, at_step=15)
    assert response.status_code == 422
    body = response.json()
    assert body["errors"][0]["path"] == "at_step"
    assert "kept steps: 10, 20, 30" in body["detail"]
    assert body["available_steps"] == [10, 20, 30]


@pytest.mark.parametrize(
    ("path", "value", "why"),
    [
        ("model.hidden", [10], "another model has other parameters"),
        ("dataset.name", "digits", "another dataset is other data"),
        ("training.batch_size", 10, "another data order"),
        ("optimizer.momentum", 0.5, "only lr, lr_schedule and weight_decay"),
        ("activation.params.learn_sigma", True, "learned parameters would change"),
        ("activation", {"name": "prelu"}, "learned parameters would change"),
        ("colour", "red", "not a field a fork may change"),
        ("noise_schedule.kind", "nope", "unknown schedule 'nope'"),
        ("training.epochs", 1, "the fork's run is 36 steps long; it starts at step 140"),
    ],
)
def test_an_override_that_cannot_continue_is_a_422_naming_it(
    client: TestClient, settings: Settings, parent: str, path: str, value: object, why: str
) -> None:
    _keep(settings, parent, 140)
    response = _fork(client, parent, at_step=140, overrides={path: value})
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    where = "training.epochs" if path == "training.epochs" else path
    assert error["path"].startswith(f"overrides.{where.split('.')[0]}")
    assert why in error["message"]


def test_allowed_overrides_pass(client: TestClient, parent: str) -> None:
    overrides = {
        "activation.params.sigma": 0.6,
        "activation": {"name": "noisy_relu", "params": {"sigma": 0.6}},
        "optimizer.lr": 0.001,
        "optimizer.weight_decay": 0.01,
        "training.epochs": 40,
        "training.early_stopping": {"metric": "val/loss", "patience": 2, "mode": "min"},
        "seed": 7,
    }
    response = _fork(client, parent, at_step=30, overrides=overrides, noise_clock="restart")
    assert response.status_code == 201, response.text
    assert response.json()["spec"]["training"]["epochs"] == 40


def test_only_the_owner_or_an_admin_may_fork(settings: Settings) -> None:
    secured = settings.model_copy(update={"auth_enabled": True})
    with TestClient(create_app(secured)) as client:
        keys = {}
        with session_scope(secured.resolved_database_url) as session:
            for owner, admin in (("alice", False), ("bob", False), ("root", True)):
                keys[owner] = {
                    "Authorization": f"Bearer {auth.create_key(session, owner=owner, admin=admin)}"
                }
        exp = client.post("/v1/experiments", json=canonical_spec(), headers=keys["alice"]).json()
        _keep(secured, exp["id"], 10)
        url = f"/v1/experiments/{exp['id']}/fork"
        bob = client.post(url, json={"at_step": 10}, headers=keys["bob"])
        assert bob.status_code == 404 and "alice" not in bob.text
        assert client.post(url, json={"at_step": 10}, headers=keys["alice"]).status_code == 201
        assert client.post(url, json={"at_step": 10}, headers=keys["root"]).status_code == 201


def test_a_forks_metrics_read_as_the_parents_up_to_k_then_its_own(
    client: TestClient, settings: Settings, parent: str
) -> None:
    _points(settings, parent, range(10, 41, 10), 0.0)
    fork = _fork(client, parent, at_step=20).json()["id"]
    _points(settings, fork, range(30, 51, 10), 100.0)
    body = client.get(f"/v1/experiments/{fork}/metrics").json()
    assert body["inherited_through_step"] == 20
    assert [(p["step"], p["value"]) for p in body["series"]["val/acc"]] == [
        (10, 10.0),
        (20, 20.0),
        (30, 130.0),
        (40, 140.0),
        (50, 150.0),
    ]
    own = client.get(f"/v1/experiments/{parent}/metrics").json()
    assert own["inherited_through_step"] is None
    assert len(own["series"]["val/acc"]) == 4
    after = client.get(f"/v1/experiments/{fork}/metrics", params={"after_step": 10}).json()
    assert [p["step"] for p in after["series"]["val/acc"]] == [20, 30, 40, 50]
    names = client.get(f"/v1/experiments/{fork}/metric-names").json()["names"]
    assert names == ["val/acc"]


def test_a_fork_of_a_fork_reads_through_both_and_lists_its_lineages_steps(
    client: TestClient, settings: Settings, parent: str
) -> None:
    _points(settings, parent, range(10, 41, 10), 0.0)
    first = _fork(client, parent, at_step=30).json()["id"]
    _keep(settings, first, 40, 50)
    _points(settings, first, range(40, 51, 10), 100.0)
    # The first fork's steps: its own kept ones, and its parent's up to 30.
    steps = client.get(f"/v1/experiments/{first}/checkpoints").json()["steps"]
    assert steps == [10, 20, 30, 40, 50]
    second = _fork(client, first, at_step=20).json()
    assert second["fork"]["checkpoint"] == f"{parent}/kept/step-20.pt"  # the parent holds 20
    third = _fork(client, first, at_step=40).json()
    assert third["fork"]["checkpoint"] == f"{first}/kept/step-40.pt"
    _points(settings, third["id"], range(50, 61, 10), 1000.0)
    body = client.get(f"/v1/experiments/{third['id']}/metrics").json()
    assert [(p["step"], p["value"]) for p in body["series"]["val/acc"]] == [
        (10, 10.0),
        (20, 20.0),
        (30, 30.0),
        (40, 140.0),
        (50, 1050.0),
        (60, 1060.0),
    ]
    # The second forked the first below the first's own fork step: only the root's points.
    body = client.get(f"/v1/experiments/{second['id']}/metrics").json()
    assert [p["step"] for p in body["series"]["val/acc"]] == [10, 20]


def test_a_spec_that_would_keep_too_much_is_refused_at_submit(
    client: TestClient, settings: Settings
) -> None:
    spec = canonical_spec()
    files, total = kept_checkpoints(
        ExperimentSpec.model_validate(spec), footprint(ExperimentSpec.model_validate(spec))
    )
    # The canonical spec keeps one file per evaluation; measured: 219 KB each on disk.
    assert files == spec["training"]["epochs"] and 200_000 < total / files < 300_000
    tight = settings.model_copy(update={"max_kept_bytes": total - 1})
    with TestClient(create_app(tight)) as small:
        refused = small.post("/v1/experiments", json=spec)
        assert refused.status_code == 422, refused.text
        body = refused.json()
        assert body["setting"] == "ACTLAB_MAX_KEPT_BYTES"
        assert body["errors"][0]["path"] == "training.keep_checkpoints"
        fewer = canonical_spec(training={"keep_checkpoints": {"every": 2}})
        assert small.post("/v1/experiments", json=fewer).status_code == 201
