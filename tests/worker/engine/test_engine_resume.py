"""Determinism, should_stop, checkpoints and bitwise resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from tests.worker.engine.engine_factories import STEPS_PER_EPOCH, Recorder, make_spec
from worker import engine
from worker.engine.checkpoint import export_safetensors
from worker.engine.errors import Interrupted, TrainingError

# Dropout (global RNG), noisy units (noise generator), a per-unit learned p, a step schedule.
RESUME_SPECS = {
    "noisy_relu_dropout": make_spec(model={"arch": "mlp", "hidden": [32, 32], "dropout": 0.2}),
    "noisy_hard_tanh_bn": make_spec(
        model={"arch": "mlp", "hidden": [16, 16], "batch_norm": True},
        activation={"name": "noisy_hard_tanh", "params": {}},
        optimizer={
            "name": "sgd",
            "lr": 0.05,
            "momentum": 0.9,
            "lr_schedule": {"kind": "cosine", "start": 1.0, "end": 0.0},
        },
    ),
    "epoch_schedules_lstm": make_spec(
        dataset={"name": "parity", "num_samples": 320, "seq_len": 5},
        model={"arch": "lstm", "hidden_size": 8, "gate_activation": {"name": "noisy_hard_sigmoid"}},
        activation={"name": "noisy_hard_tanh"},
        noise_schedule={"kind": "linear", "unit": "epoch"},
        optimizer={"lr_schedule": {"kind": "linear", "start": 1.0, "end": 0.1, "unit": "epoch"}},
        training={"epochs": 2, "batch_size": 16},  # 230 examples: 15 steps an epoch as above
    ),
}


def _run(spec, data_dir: Path, path: Path | None, stop_at: int | None = None) -> Recorder:
    rec = Recorder(stop_at_step=stop_at)
    engine.train(spec, callbacks=rec, data_dir=data_dir, checkpoint_path=path)
    return rec


def test_same_spec_same_metrics(data_dir: Path) -> None:
    spec = RESUME_SPECS["noisy_relu_dropout"]
    assert _run(spec, data_dir, None).metrics == _run(spec, data_dir, None).metrics


def test_different_seed_different_metrics(data_dir: Path) -> None:
    a = _run(make_spec(seed=1), data_dir, None).metrics
    assert a != _run(make_spec(seed=2), data_dir, None).metrics


@pytest.mark.parametrize("name", sorted(RESUME_SPECS))
@pytest.mark.parametrize("stop_at", [STEPS_PER_EPOCH, STEPS_PER_EPOCH + 7])
def test_stop_and_resume_is_bitwise_identical(
    data_dir: Path, tmp_path: Path, name: str, stop_at: int
) -> None:
    spec = RESUME_SPECS[name]
    straight = _run(spec, data_dir, tmp_path / "straight.pt")
    path = tmp_path / "resumed.pt"
    first = Recorder(stop_at_step=stop_at)
    with pytest.raises(Interrupted, match="test stop") as info:
        engine.train(spec, callbacks=first, data_dir=data_dir, checkpoint_path=path)
    assert info.value.step == stop_at
    assert first.checkpoints[-1][0] == stop_at and path.exists()
    second = _run(spec, data_dir, path)
    assert second.started[0]["resumed_from_step"] == stop_at
    assert first.metrics + second.metrics == straight.metrics
    final = [torch.load(p, weights_only=False)["model"] for p in (path, tmp_path / "straight.pt")]
    assert all(torch.equal(final[0][k], final[1][k]) for k in final[0])


def test_resuming_a_finished_run_reports_its_result(data_dir: Path, tmp_path: Path) -> None:
    spec, path = make_spec(training={"epochs": 1}), tmp_path / "c.pt"
    first = engine.train(spec, callbacks=Recorder(), data_dir=data_dir, checkpoint_path=path)
    rec = Recorder()
    again = engine.train(spec, callbacks=rec, data_dir=data_dir, checkpoint_path=path)
    assert again.summary == first.summary and rec.metrics == []


def test_checkpoint_of_another_spec_is_refused(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    engine.train(
        make_spec(training={"epochs": 1}),
        callbacks=Recorder(),
        data_dir=data_dir,
        checkpoint_path=path,
    )
    with pytest.raises(TrainingError, match="different spec"):
        engine.train(
            make_spec(seed=5), callbacks=Recorder(), data_dir=data_dir, checkpoint_path=path
        )


def test_checkpoint_contents_and_safetensors_export(data_dir: Path, tmp_path: Path) -> None:
    spec, path = make_spec(training={"epochs": 1}), tmp_path / "c.pt"
    engine.train(spec, callbacks=Recorder(), data_dir=data_dir, checkpoint_path=path)
    payload = torch.load(path, weights_only=False)
    assert {"spec", "model", "optimizer", "noise_schedule", "lr_schedule", "rng", "loop"} <= set(
        payload
    )
    assert {"python", "numpy", "torch", "cuda", "data", "noise"} <= set(payload["rng"])
    assert payload["loop"]["step"] == STEPS_PER_EPOCH and payload["loop"]["finished"]
    out = export_safetensors(path, tmp_path / "w.safetensors")
    with safe_open(str(out), framework="pt") as fh:
        assert json.loads(fh.metadata()["spec"]) == spec.model_dump(mode="json")
        assert set(fh.keys()) == set(payload["model"])
    assert not list(tmp_path.glob("*.tmp"))


def test_unreadable_checkpoint_starts_over_with_the_same_curve(
    data_dir: Path, tmp_path: Path
) -> None:
    spec, path = make_spec(training={"epochs": 1}), tmp_path / "c.pt"
    clean = _run(spec, data_dir, None)
    path.write_bytes(b"torn by a crash")
    rec = Recorder()
    engine.train(spec, callbacks=rec, data_dir=data_dir, checkpoint_path=path)
    assert rec.metrics == clean.metrics and rec.started[0]["resumed_from_step"] == 0
    assert any("unreadable checkpoint" in note for note in rec.notes)
