"""The trainer: metrics, reports, divergence, time limit, early stopping, device options."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from core.spec import ExperimentSpec
from core.spec.experiment import CANONICAL_EXAMPLE
from tests.worker.engine.engine_factories import STEPS_PER_EPOCH, Recorder, make_spec
from worker import engine
from worker.engine.errors import Diverged, TimeLimitExceeded, TrainingError

BASIC = {
    "train/loss",
    "train/acc",
    "train_running/loss",
    "train_running/acc",
    "val/loss",
    "val/acc",
    "test/loss",
    "test/acc",
    "noise/scale",
    "lr",
}


def test_reports_metrics_progress_and_result(data_dir: Path, tmp_path: Path) -> None:
    rec = Recorder()
    result = engine.train(
        make_spec(), callbacks=rec, data_dir=data_dir, checkpoint_path=tmp_path / "c.pt"
    )
    total = 3 * STEPS_PER_EPOCH
    assert rec.started == [{"total_steps": total, "total_epochs": 3, "resumed_from_step": 0}]
    assert [(s, e) for s, e, _ in rec.metrics] == [(15, 1), (30, 2), (45, 3)]
    diagnostics = {
        "act/layer1/sparsity",
        "act/layer1/dead_fraction",
        "grad/layer1/norm",
        "act/layer2/sparsity",
    }
    for _, _, values in rec.metrics:
        assert set(values) >= BASIC
    # Default cadence: every 5th evaluation, and always the last one.
    assert [bool(diagnostics <= set(v)) for _, _, v in rec.metrics] == [False, False, True]
    assert rec.metrics[-1][2]["noise/scale"] == pytest.approx(0.0, abs=1e-2)
    # The cosine schedule has annealed the noise to ~0: no SNR (docs/activations.md).
    assert "act/layer1/snr" not in rec.metrics[-1][2]
    assert "act/layer1/snr_output" not in rec.metrics[-1][2]
    assert rec.progress[-1] == (3, total)
    assert rec.checkpoints[-1] == (total, 3)
    assert result.steps == total and result.epochs == 3
    assert result.summary["test/acc"] == rec.metrics[-1][2]["test/acc"]
    assert result.checkpoint_path == tmp_path / "c.pt" and result.checkpoint_path.exists()


def test_cadences_and_max_steps(data_dir: Path) -> None:
    rec = Recorder()
    spec = make_spec(
        training={
            "epochs": 4,
            "max_steps": 50,
            "eval_every": 2,
            "diagnostics_every": 0,
            "batch_size": 50,
        }
    )
    result = engine.train(spec, callbacks=rec, data_dir=data_dir)
    # Epoch 2 evaluates at step 30; max_steps ends inside epoch 4 with a final evaluation.
    assert [(s, e) for s, e, _ in rec.metrics] == [(30, 2), (50, 4)]
    assert not any(k.startswith(("act/", "grad/")) for k in rec.metrics[0][2])
    assert result.steps == 50 and rec.started[0]["total_epochs"] == 4


def test_canonical_spec_trains_relu_mlp_to_published_range(data_dir: Path) -> None:
    """MNIST-1D MLP [100, 100], Adam 1e-2, 20 epochs: the published MLP reaches 68%."""
    accs = []
    for seed in (0, 1, 2):
        raw = copy.deepcopy(CANONICAL_EXAMPLE)
        raw["seed"], raw["activation"] = seed, {"name": "relu"}
        result = engine.train(
            ExperimentSpec.model_validate(raw), callbacks=engine.Callbacks(), data_dir=data_dir
        )
        accs.append(result.summary["test/acc"])
    assert sum(accs) / len(accs) >= 0.60, accs


def test_divergence_raises_at_its_step_after_reported_metrics(data_dir: Path) -> None:
    rec = Recorder()
    # lr multiplier 1e-8 in epoch 1 (lr 0.01), then ~1/3 (lr ~3e5): diverges in epoch 2.
    spec = make_spec(
        optimizer={
            "name": "sgd",
            "lr": 1e6,
            "lr_schedule": {"kind": "linear", "start": 1e-8, "end": 1.0, "unit": "epoch"},
        }
    )
    with pytest.raises(Diverged) as info:
        engine.train(spec, callbacks=rec, data_dir=data_dir)
    assert [s for s, _, _ in rec.metrics] == [STEPS_PER_EPOCH]
    assert info.value.epoch == 2 and info.value.step > STEPS_PER_EPOCH
    assert f"step {info.value.step}" in str(info.value)


def test_huge_learning_rate_diverges(data_dir: Path) -> None:
    spec = make_spec(optimizer={"name": "sgd", "lr": 1e6})
    with pytest.raises(Diverged):
        engine.train(spec, callbacks=engine.Callbacks(), data_dir=data_dir)


def test_time_limit(data_dir: Path) -> None:
    spec = make_spec(training={"epochs": 1000, "time_limit_s": 0.2})
    with pytest.raises(TimeLimitExceeded):
        engine.train(spec, callbacks=engine.Callbacks(), data_dir=data_dir)


def test_early_stopping_stops_cleanly(data_dir: Path, tmp_path: Path) -> None:
    rec = Recorder()
    rule = {"metric": "train/loss", "mode": "max", "patience": 2}  # loss falls: never improves
    spec = make_spec(training={"epochs": 10, "early_stopping": rule})
    result = engine.train(spec, callbacks=rec, data_dir=data_dir, checkpoint_path=tmp_path / "c")
    assert len(rec.metrics) == 3 and result.epochs == 3
    assert result.summary["early_stopped"] == 1.0
    assert rec.checkpoints[-1] == (3 * STEPS_PER_EPOCH, 3)


def test_early_stopping_on_unknown_metric_is_an_error(data_dir: Path) -> None:
    # The spec refuses an unknown metric at submit; a spec built around validation (an old
    # stored row) still fails clearly in the engine instead of training on.
    with pytest.raises(ValidationError, match="early_stopping"):
        make_spec(training={"early_stopping": {"metric": "val/nope"}})
    spec = make_spec(training={"early_stopping": {"metric": "val/loss"}})
    spec.training.early_stopping.metric = "val/nope"  # type: ignore[union-attr,assignment]
    with pytest.raises(TrainingError, match="val/loss"):
        engine.train(spec, callbacks=engine.Callbacks(), data_dir=data_dir)


def test_cuda_only_options_are_noted_on_cpu(data_dir: Path) -> None:
    spec = make_spec(training={"epochs": 1, "device": "cpu", "precision": "bf16", "compile": True})
    rec = Recorder()
    engine.train(spec, callbacks=rec, data_dir=data_dir)
    assert any("bf16" in n for n in rec.notes) and any("compile" in n for n in rec.notes)


@pytest.mark.parametrize(
    "optimizer",
    [
        {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
        {
            "name": "adamw",
            "lr": 0.01,
            "weight_decay": 0.01,
            "lr_schedule": {"kind": "cosine", "start": 1.0, "end": 0.1},
        },
    ],
)
def test_optimizers_and_lr_schedule(data_dir: Path, optimizer: dict) -> None:
    rec = Recorder()
    spec = make_spec(optimizer=optimizer, training={"grad_clip": 1.0, "diagnostics_every": 0})
    engine.train(spec, callbacks=rec, data_dir=data_dir)
    lrs = [v["lr"] for _, _, v in rec.metrics]
    if "lr_schedule" in optimizer:
        assert lrs[0] > lrs[-1] >= 0.1 * optimizer["lr"] - 1e-12
    else:
        assert lrs == [optimizer["lr"]] * 3
    assert rec.metrics[-1][2]["train/loss"] < rec.metrics[0][2]["train/loss"] * 1.5


@pytest.mark.parametrize(
    ("dataset", "model", "activation"),
    [
        (
            {"name": "parity", "num_samples": 200, "seq_len": 6},
            {"arch": "gru", "hidden_size": 8},
            {"name": "noisy_hard_tanh"},
        ),
        (
            {"name": "adding", "num_samples": 200, "seq_len": 6},
            {"arch": "lstm", "hidden_size": 8},
            {"name": "tanh"},
        ),
        ({"name": "digits", "as_image": True}, {"arch": "cnn", "channels": [8]}, {"name": "relu"}),
        (
            {"name": "mnist1d", "num_samples": 1000},
            {"arch": "cnn", "channels": [8, 8]},
            {"name": "noisy_relu"},
        ),
        (
            {"name": "spirals", "num_samples": 300, "arms": 3},
            {"arch": "mlp", "hidden": [16]},
            {"name": "relu"},
        ),
    ],
    ids=["parity-gru", "adding-lstm", "digits-cnn2d", "mnist1d-cnn1d", "spirals-mlp"],
)
def test_every_task_and_arch_trains(data_dir: Path, dataset, model, activation) -> None:
    rec = Recorder()
    spec = make_spec(
        dataset=dataset,
        model=model,
        activation=activation,
        training={"epochs": 1, "batch_size": 32},
    )
    result = engine.train(spec, callbacks=rec, data_dir=data_dir)
    noisy = activation["name"].startswith("noisy")
    assert set(result.summary) >= BASIC - {"noise/scale"} and len(rec.metrics) == 1
    assert ("noise/scale" in result.summary) == noisy  # relu and tanh have no noise to scale
    assert any(k.startswith("grad/") for k in result.summary)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_cuda_requested_without_cuda_is_a_clear_error(data_dir: Path) -> None:
    spec = make_spec(training={"device": "cuda"})
    with pytest.raises(TrainingError, match="CUDA is not available"):
        engine.train(spec, callbacks=engine.Callbacks(), data_dir=data_dir)


class _LostLease(Recorder):
    """Asks to stop at a step, as the heartbeat does when the lease is lost."""

    def may_checkpoint(self) -> bool:
        return self.step < 5


def test_a_run_that_lost_its_lease_writes_no_checkpoint(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    with pytest.raises(engine.Interrupted):
        engine.train(
            make_spec(),
            callbacks=_LostLease(stop_at_step=7),
            data_dir=data_dir,
            checkpoint_path=path,
        )
    assert not path.exists()


def test_the_noise_schedule_reaches_every_noisy_unit_each_step(data_dir: Path) -> None:
    from worker.engine.setup import build_run
    from worker.engine.state import LoopState
    from worker.engine.trainer import Trainer

    spec = make_spec()
    run = build_run(spec, data_dir)
    assert len(run.noisy_units) == 2
    seen: dict[int, list[float]] = {0: [], 1: []}
    for i, unit in enumerate(run.noisy_units):
        unit.register_forward_pre_hook(
            lambda m, _args, i=i: seen[i].append(m.noise_scale) if m.training else None
        )
    Trainer(run, LoopState(lr=spec.optimizer.lr), Recorder(), None).fit(resumed=False)
    total = 3 * STEPS_PER_EPOCH
    expected = [run.noise_schedule.at(step) for step in range(total)]
    assert expected[0] == 1.0 and expected[-1] < 0.01  # cosine from 1 towards 0
    for values in seen.values():
        assert values == pytest.approx(expected)


@pytest.mark.parametrize(("metric", "mode"), [("val/acc", "max"), ("val/loss", "min")])
def test_summary_holds_the_last_and_the_best_evaluation(
    data_dir: Path, tmp_path: Path, metric: str, mode: str
) -> None:
    rec = Recorder()
    spec = make_spec(training={"epochs": 3, "best_metric": metric, "best_mode": mode})
    result = engine.train(spec, callbacks=rec, data_dir=data_dir, checkpoint_path=tmp_path / "c.pt")
    pick = max if mode == "max" else min
    step, epoch, values = pick(rec.metrics, key=lambda m: m[2][metric])
    best = result.summary["best"]
    assert (best["metric"], best["mode"], best["step"], best["epoch"]) == (
        metric,
        mode,
        step,
        epoch,
    )
    assert best["values"] == values
    last_step, last_epoch, last = rec.metrics[-1]
    assert result.summary["last"] == {"step": last_step, "epoch": last_epoch}
    assert result.summary["val/acc"] == last["val/acc"]


def test_snr_is_left_out_once_the_noise_has_vanished() -> None:
    from worker.engine.diagnostics import SNR_MAX, _layer_values, _LayerStats

    def snr(noise_var: float) -> float | None:
        # Signal: values 0 and 2 -> variance 1 per element.
        st = _LayerStats(signal_sum=2.0, signal_sq=4.0, noise_var_sum=2 * noise_var, seen=2)
        st.has_snr = True
        return _layer_values("layer1", st).get("act/layer1/snr")

    assert snr(0.25) == pytest.approx(4.0)
    assert snr(1 / SNR_MAX) == pytest.approx(SNR_MAX)
    assert snr(1e-12) is None  # annealed to ~0: not a 1e12 "signal-to-noise ratio"
    assert snr(0.0) is None
