"""Every cap rejects with the limit and the setting that raises it; nothing is created."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from service.app import create_app
from tests.support import canonical_spec


@pytest.fixture
def tight(settings: Settings) -> Iterator[TestClient]:
    settings = settings.model_copy(
        update={
            "max_epochs": 50,
            "max_steps": 1000,
            "max_model_parameters": 20_000,
            "max_queued_per_owner": 2,
            "max_body_bytes": 4096,
        }
    )
    with TestClient(create_app(settings)) as client:
        yield client


LIMITS = {
    "ACTLAB_MAX_EPOCHS": 50,
    "ACTLAB_MAX_STEPS": 1000,
    "ACTLAB_MAX_MODEL_PARAMETERS": 20_000,
    "ACTLAB_MAX_QUEUED_PER_OWNER": 2,
    "ACTLAB_MAX_BODY_BYTES": 4096,
}


def _rejected(response, status: int, setting: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert body["setting"] == setting
    assert setting in body["detail"]
    assert body["limit"] == LIMITS[setting]  # the limit in force, not just its name


def test_epochs_cap(tight: TestClient) -> None:
    _rejected(
        tight.post("/v1/experiments", json=canonical_spec(training={"epochs": 51})),
        422,
        "ACTLAB_MAX_EPOCHS",
    )


def test_steps_cap(tight: TestClient) -> None:
    spec = canonical_spec(training={"epochs": 1, "max_steps": 1001})
    _rejected(tight.post("/v1/experiments", json=spec), 422, "ACTLAB_MAX_STEPS")


def test_model_size_cap(tight: TestClient) -> None:
    # 40*500 + 500*10 weights: over 20,000 parameters.
    spec = canonical_spec(model={"arch": "mlp", "hidden": [500]})
    _rejected(tight.post("/v1/experiments", json=spec), 422, "ACTLAB_MAX_MODEL_PARAMETERS")


def test_queued_per_owner_cap(tight: TestClient) -> None:
    for seed in range(2):
        assert tight.post("/v1/experiments", json=canonical_spec(seed=seed)).status_code == 201
    _rejected(
        tight.post("/v1/experiments", json=canonical_spec(seed=3)),
        429,
        "ACTLAB_MAX_QUEUED_PER_OWNER",
    )
    assert len(tight.get("/v1/experiments").json()["items"]) == 2


# The last of ten grid points is wrong: a spec that does not validate, or one whose model
# (built only by the limit checks) is over the parameter cap.
DEEP_FAULTS = {
    "invalid member spec": ("optimizer.lr", [0.001 * (i + 1) for i in range(9)] + ["fast"]),
    "member over a limit": ("model.hidden", [[i + 1] for i in range(9)] + [[500]]),
}


@pytest.mark.parametrize("fault", list(DEEP_FAULTS))
def test_an_owner_at_the_queue_cap_is_refused_before_any_member_is_checked(
    tight: TestClient, fault: str
) -> None:
    """Over the cap and wrong deep in the grid: the cap's 429 wins, so the checks that
    validate every member and build its model (seconds for a large sweep) never ran."""
    for seed in range(2):
        assert tight.post("/v1/experiments", json=canonical_spec(seed=seed)).status_code == 201
    path, values = DEEP_FAULTS[fault]
    base = {k: v for k, v in canonical_spec().items() if k not in ("name", "seed")}
    sweep = {"name": "deep", "base_spec": base, "grid": {path: values}, "seeds": [0]}
    _rejected(tight.post("/v1/sweeps", json=sweep), 429, "ACTLAB_MAX_QUEUED_PER_OWNER")
    assert tight.get("/v1/sweeps").json()["items"] == []
    assert len(tight.get("/v1/experiments").json()["items"]) == 2


def test_an_owner_at_the_queue_cap_is_refused_before_the_model_is_built(
    tight: TestClient,
) -> None:
    for seed in range(2):
        assert tight.post("/v1/experiments", json=canonical_spec(seed=seed)).status_code == 201
    too_big = canonical_spec(model={"arch": "mlp", "hidden": [500]})
    _rejected(tight.post("/v1/experiments", json=too_big), 429, "ACTLAB_MAX_QUEUED_PER_OWNER")


def test_body_size_cap(tight: TestClient) -> None:
    spec = canonical_spec(tags=["x" * 60] * 30, name="y" * 200)
    spec["padding"] = "z" * 5000
    response = tight.post("/v1/experiments", json=spec)
    _rejected(response, 413, "ACTLAB_MAX_BODY_BYTES")
    assert tight.get("/v1/experiments").json()["items"] == []


def test_a_streamed_body_without_length_is_capped_too(tight: TestClient) -> None:
    def chunks():  # no Content-Length: the server must count what arrives
        yield b'{"name": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    response = tight.post(
        "/v1/experiments", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    _rejected(response, 413, "ACTLAB_MAX_BODY_BYTES")


@pytest.mark.parametrize("schedule", ["noise_schedule", "lr_schedule"])
def test_a_warmup_longer_than_the_run_is_a_422_at_submit(client: TestClient, schedule: str) -> None:
    """Accepted before and failing only in the worker: now refused, naming the field."""
    section = {"kind": "cosine", "warmup": 10_000_000}
    sections = (
        {"noise_schedule": section}
        if schedule == "noise_schedule"
        else {"optimizer": {"name": "adam", "lr": 1e-3, "lr_schedule": section}}
    )
    spec = canonical_spec(**sections)
    for path in ("/v1/experiments", "/v1/experiments/preview"):
        response = client.post(path, json=spec)
        assert response.status_code == 422, response.text
        expected = "noise_schedule" if schedule == "noise_schedule" else "optimizer.lr_schedule"
        assert response.json()["errors"][0]["path"] == f"{expected}.warmup"
