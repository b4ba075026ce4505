"""A spec's preview is the curve its run reports: a real worker's stored noise/scale and lr."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support import Process, canonical_spec, wait_for_status

pytestmark = pytest.mark.integration


def test_the_preview_equals_the_stored_noise_scale_and_lr(
    client: TestClient, worker: Process
) -> None:
    # 720 training examples in batches of 100: 8 steps an epoch; max_steps ends mid-epoch 3.
    spec = canonical_spec(
        dataset={"name": "moons", "num_samples": 1000},
        model={"arch": "mlp", "hidden": [16]},
        noise_schedule={"kind": "cosine", "start": 1.0, "end": 0.1, "warmup": 3, "unit": "step"},
        optimizer={
            "name": "adam",
            "lr": 0.01,
            "lr_schedule": {"kind": "step", "unit": "epoch", "params": {"step_size": 1}},
        },
        training={"epochs": 5, "max_steps": 20, "batch_size": 100, "diagnostics_every": 0},
    )
    preview = client.post("/v1/experiments/preview", json=spec, params={"steps": "evaluations"})
    assert preview.status_code == 200, preview.text
    planned = preview.json()
    assert (planned["steps_per_epoch"], planned["total_steps"]) == (8, 20)
    exp = client.post("/v1/experiments", json=spec).json()
    done = wait_for_status(client, exp["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    assert done["progress"]["total"] == planned["total_steps"]
    stored = client.get(
        f"/v1/experiments/{exp['id']}/metrics", params={"name": ["noise/scale", "lr"]}
    ).json()["series"]
    for name in ("noise/scale", "lr"):
        expected = [(p["step"], p["epoch"], p["value"]) for p in planned["series"][name]]
        measured = [(p["step"], p["epoch"], p["value"]) for p in stored[name]]
        assert [s for s, _, _ in measured] == [8, 16, 20], name
        assert measured == expected, name  # exact: the same code computes both
    # The per-step preview holds the same values at those steps, and the curve between.
    every = client.post("/v1/experiments/preview", json=spec).json()["series"]["noise/scale"]
    by_step = {p["step"]: p["value"] for p in every}
    assert [by_step[p["step"]] for p in stored["noise/scale"]] == [
        p["value"] for p in stored["noise/scale"]
    ]
    assert len(every) == 20 and every[0]["value"] == 0.0  # warmup starts at 0
