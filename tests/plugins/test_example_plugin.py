"""The example plugin's activation, dataset and model through a real API and real workers.

The API and one worker have the package; another worker does not, and fails the
experiment naming the missing plugin; a retry then trains on the worker that has it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from core.settings import Settings
from tests.e2e.sse_client import free_port
from tests.plugins.conftest import with_path
from tests.support import HANG_S, Process, canonical_spec, settings_env, wait_for_status

pytestmark = pytest.mark.integration

SPEC = {
    **canonical_spec(
        dataset={"name": "xor", "num_samples": 400},
        activation={"name": "noisy_softplus", "params": {"sigma": 0.2}},
        training={"epochs": 2, "batch_size": 50},
    ),
    "model": {"arch": "resmlp", "width": 16, "depth": 2},  # replaced, not merged with mlp's
}


def _worker(settings: Settings, log: Path, name: str, *paths: Path) -> Process:
    args = [sys.executable, "-m", "actlab", "worker", "--name", f"{name}@test"]
    worker = Process(args, with_path(settings_env(settings), *paths), log)
    worker.wait_for(" ready.")
    return worker


def test_the_plugin_trains_through_the_api(
    settings: Settings, tmp_path: Path, plugin_path: Path
) -> None:
    port = free_port()
    api = Process(
        [sys.executable, "-m", "actlab", "api", "--port", str(port)],
        with_path(settings_env(settings), plugin_path),
        tmp_path / "api.log",
    )
    try:
        api.wait_for("Uvicorn running")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HANG_S) as client:
            _catalogue_and_validation(client)
            _fails_without_then_trains_with(client, settings, tmp_path, plugin_path)
    finally:
        api.stop()


def _catalogue_and_validation(client: httpx.Client) -> None:
    units = {row["name"]: row for row in client.get("/v1/activations").json()}
    assert units["noisy_softplus"]["source"] == "actlab-example-plugin 0.1.0"
    assert units["relu"]["source"] == "builtin"
    assert {p["name"] for p in units["noisy_softplus"]["params"]} == {"sigma", "beta"}
    sets = {row["name"]: row for row in client.get("/v1/datasets").json()}
    assert sets["xor"]["input_shape"] == [2] and sets["xor"]["classes"] == 2
    archs = {row["name"]: row for row in client.get("/v1/models").json()}
    assert archs["resmlp"]["source"] == "actlab-example-plugin 0.1.0"
    assert {p["name"] for p in archs["resmlp"]["params"]} == {"width", "depth"}
    # Validated like a built-in: a bad parameter is a 422 naming the field.
    bad = client.post(
        "/v1/experiments",
        json={**SPEC, "activation": {"name": "noisy_softplus", "params": {"sigma": 11.0}}},
    )
    assert bad.status_code == 422, bad.text
    assert bad.json()["errors"][0]["path"] == "activation.params.sigma", bad.text
    # ... and the 422 listings of valid names include the plugin's.
    unknown = client.post("/v1/experiments", json={**SPEC, "activation": {"name": "nope"}})
    assert unknown.status_code == 422 and "noisy_softplus" in unknown.text, unknown.text
    unknown = client.post("/v1/experiments", json={**SPEC, "dataset": {"name": "nope"}})
    assert unknown.status_code == 422 and "xor" in unknown.text, unknown.text
    shallow = client.post("/v1/experiments", json={**SPEC, "model": {"arch": "resmlp", "depth": 0}})
    assert shallow.status_code == 422, shallow.text
    assert shallow.json()["errors"][0]["path"] == "model.depth", shallow.text
    unknown = client.post("/v1/experiments", json={**SPEC, "model": {"arch": "nope"}})
    assert unknown.status_code == 422 and "resmlp" in unknown.text, unknown.text
    # The size limit measures the plugin's own network (its builder on the meta device).
    huge = client.post(
        "/v1/experiments", json={**SPEC, "model": {"arch": "resmlp", "width": 4096, "depth": 32}}
    )
    assert huge.status_code == 422 and "ACTLAB_MAX_MODEL_PARAMETERS" in huge.text, huge.text


def _fails_without_then_trains_with(
    client: httpx.Client, settings: Settings, tmp_path: Path, plugin_path: Path
) -> None:
    created = client.post("/v1/experiments", json=SPEC)
    assert created.status_code == 201, created.text
    exp_id = created.json()["id"]
    bare = _worker(settings, tmp_path / "bare.log", "bare")
    try:
        failed = wait_for_status(client, exp_id, {"failed", "succeeded"})
    finally:
        bare.stop()
    assert failed["status"] == "failed" and failed["status_reason"] == "missing_plugin", failed
    message = failed["status_message"]
    assert "activation 'noisy_softplus'" in message and "actlab.activations" in message
    assert "dataset 'xor'" in message
    assert "model 'resmlp'" in message and "actlab.models" in message
    assert client.post(f"/v1/experiments/{exp_id}/retry").status_code == 200
    equipped = _worker(settings, tmp_path / "equipped.log", "equipped", plugin_path)
    try:
        done = wait_for_status(client, exp_id, {"failed", "succeeded"})
    finally:
        equipped.stop()
    assert done["status"] == "succeeded", done
    assert 0.0 <= done["summary"]["test/acc"] <= 1.0
    series = client.get(f"/v1/experiments/{exp_id}/metrics").json()["series"]
    assert [p["epoch"] for p in series["train/loss"]] == [1, 2]
