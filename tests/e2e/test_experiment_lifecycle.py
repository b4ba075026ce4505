"""A real worker process on a real broker and database trains what the API accepts."""

from __future__ import annotations

import json
import math

import pytest
import safetensors.torch
import torch
from fastapi.testclient import TestClient

from tests.support import Process, canonical_spec, wait_for_status

pytestmark = pytest.mark.integration


# One worker for the whole module (tests/conftest.py): each test reads only its own experiments.
@pytest.fixture(scope="module")
def worker(module_worker: Process) -> Process:
    return module_worker


@pytest.fixture
def client(module_client: TestClient, worker: Process) -> TestClient:
    return module_client


EPOCH_METRICS = ["train/loss", "train/acc", "val/loss", "val/acc", "test/acc", "noise/scale"]


def test_canonical_spec_trains_to_success(client: TestClient, worker: Process) -> None:
    spec = canonical_spec(training={"epochs": 2, "batch_size": 100})
    exp = client.post("/v1/experiments", json=spec).json()
    done = wait_for_status(client, exp["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 1
    assert done["progress"]["epoch"] == 2
    assert done["progress"]["step"] == done["progress"]["total"] > 0
    assert 0.0 <= done["summary"]["test/acc"] <= 1.0
    series = client.get(f"/v1/experiments/{exp['id']}/metrics").json()["series"]
    for name in EPOCH_METRICS:
        assert [p["epoch"] for p in series[name]] == [1, 2], name
    # noise/scale is the cosine schedule's value at the epoch's last step: 1 -> 0 over 72 steps.
    scales = [p["value"] for p in series["noise/scale"]]
    assert scales[0] == pytest.approx(0.5 * (1 + math.cos(math.pi * 35 / 72)), rel=1e-6)
    assert 0.0 <= scales[1] < 0.01
    only = client.get(f"/v1/experiments/{exp['id']}/metrics", params={"name": "val/acc"})
    assert list(only.json()["series"]) == ["val/acc"]
    weights = client.get(f"/v1/experiments/{exp['id']}/weights")
    assert weights.status_code == 200
    tensors = safetensors.torch.load(weights.content)
    assert tensors and all(t.dtype == torch.float32 for t in tensors.values())
    metadata = safe_open_metadata(weights.content)
    assert json.loads(metadata["spec"])["activation"]["name"] == "noisy_relu"


def safe_open_metadata(blob: bytes) -> dict[str, str]:
    # safetensors layout: 8-byte little-endian header length, then the JSON header.
    size = int.from_bytes(blob[:8], "little")
    metadata: dict[str, str] = json.loads(blob[8 : 8 + size])["__metadata__"]
    return metadata


def test_diverging_run_fails_as_diverged_and_keeps_metrics(
    client: TestClient, worker: Process
) -> None:
    # lr ramps from 0.1 in epoch 1 to 1e6 later: epoch 1 is reported, then the loss overflows.
    spec = canonical_spec(
        activation={"name": "relu", "params": {}},
        optimizer={
            "name": "sgd",
            "lr": 1e6,
            "lr_schedule": {"kind": "linear", "start": 1e-7, "end": 1.0, "unit": "epoch"},
        },
        training={"epochs": 3, "batch_size": 100},
    )
    exp = client.post("/v1/experiments", json=spec).json()
    done = wait_for_status(client, exp["id"], {"succeeded", "failed"})
    assert done["status"] == "failed", done
    assert done["status_reason"] == "diverged"
    assert "non-finite" in done["status_message"] or "diverged" in done["status_message"]
    series = client.get(f"/v1/experiments/{exp['id']}/metrics").json()["series"]
    assert [p["epoch"] for p in series["val/acc"]] == [1]


def test_an_error_fails_with_its_message(client: TestClient, worker: Process) -> None:
    spec = canonical_spec(dataset={"name": "mnist", "download": False}, training={"epochs": 1})
    exp = client.post("/v1/experiments", json=spec).json()
    done = wait_for_status(client, exp["id"], {"succeeded", "failed"})
    assert done["status"] == "failed"
    assert done["status_reason"] == "error"
    assert "train-images-idx3-ubyte" in done["status_message"]
    assert client.get(f"/v1/experiments/{exp['id']}/weights").status_code == 409


def test_what_the_run_changed_from_its_spec_reaches_the_events(
    client: TestClient, worker: Process
) -> None:
    """The engine's notes (here: CUDA-only options on a CPU worker) are experiment events."""
    spec = canonical_spec(
        training={"epochs": 1, "batch_size": 100, "device": "cpu", "precision": "bf16"}
    )
    exp = client.post("/v1/experiments", json=spec).json()
    done = wait_for_status(client, exp["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    events = client.get(f"/v1/experiments/{exp['id']}/events").json()["events"]
    logs = [e["message"] for e in events if e["kind"] == "log"]
    assert any("precision bf16 ignored" in m for m in logs), logs
