"""train/* are eval-mode scores on a fixed training subset; train_running/* the noisy means."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.worker.engine.engine_factories import STEPS_PER_EPOCH, Recorder, make_spec
from worker import engine
from worker.engine import checkpoint as ckpt
from worker.engine.metrics import collect
from worker.engine.setup import build_run
from worker.engine.state import LoopState
from worker.engine.trainer import Trainer

N = 300  # fewer than the 720 training examples: the subset, not the whole split


def _noisy_spec(optimizer: dict | None = None, **training):
    """Loud constant noise (sigma 3): training-mode outputs are far from eval-mode ones."""
    return make_spec(
        activation={"name": "noisy_relu", "params": {"sigma": 3.0}},
        noise_schedule={"kind": "constant", "start": 1.0, "end": 1.0, "unit": "step"},
        optimizer=optimizer or {},
        training={"train_eval_size": N, "diagnostics_every": 0, **training},
    )


def _eval_mode_scores(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    """Loss and accuracy of `model` in eval mode, written out here, not `evaluate`."""
    model.eval()
    with torch.no_grad():
        out = model(x)
    return F.cross_entropy(out, y).item(), (out.argmax(dim=1) == y).double().mean().item()


def test_train_scores_are_an_eval_mode_pass_over_the_first_examples(
    data_dir: Path, tmp_path: Path
) -> None:
    spec, rec = _noisy_spec(epochs=2), Recorder()
    engine.train(spec, callbacks=rec, data_dir=data_dir, checkpoint_path=tmp_path / "c.pt")
    reported = rec.metrics[-1][2]
    # The model the last evaluation scored: the final checkpoint is written right after it.
    run = build_run(spec, data_dir)
    ckpt.restore(run, ckpt.load(tmp_path / "c.pt"))
    x, y = run.data.tensors["train"]
    loss, acc = _eval_mode_scores(run.model, x[:N], y[:N])
    assert reported["train/acc"] == acc
    assert reported["train/loss"] == pytest.approx(loss, rel=1e-6)
    # The whole split (or another subset) would score otherwise: the first N are measured.
    assert _eval_mode_scores(run.model, x[N:], y[N:]) != (loss, acc)
    # The bias the running mean had as train/acc: through sigma-3 noise it reads far lower
    # (seen: 0.12 against 0.25) than the same model's clean training accuracy.
    assert reported["train_running/acc"] < reported["train/acc"] - 0.05


def test_train_running_scores_are_the_noisy_minibatch_means(data_dir: Path) -> None:
    # lr 1e-30: no step moves a weight (w - 1e-30 g == w in float32), so the model of every
    # minibatch is the initial one and the epoch can be replayed here, noise draws and all.
    spec, rec = _noisy_spec({"name": "sgd", "lr": 1e-30}, epochs=1), Recorder()
    engine.train(spec, callbacks=rec, data_dir=data_dir)
    reported = rec.metrics[-1][2]

    run = build_run(spec, data_dir)
    x, y = run.data.tensors["train"]
    perm = torch.randperm(len(x), generator=run.data_gen)
    loss_sum, hits, bs = 0.0, 0, spec.training.batch_size
    run.model.train()
    with torch.no_grad():  # the noise is drawn in the forward pass, in the same order
        for b in range(STEPS_PER_EPOCH):
            idx = perm[b * bs : (b + 1) * bs]
            out = run.model(x[idx])
            loss_sum += F.cross_entropy(out, y[idx]).item() * len(idx)
            hits += int((out.argmax(dim=1) == y[idx]).sum())
    assert reported["train_running/acc"] == hits / len(x)
    assert reported["train_running/loss"] == pytest.approx(loss_sum / len(x), rel=1e-6)

    _, eval_acc = _eval_mode_scores(run.model, x[:N], y[:N])
    assert reported["train/acc"] == eval_acc
    # Measured through sigma-3 noise (and on every example), the running mean is another
    # figure than the eval-mode one, though the model is the same.
    assert reported["train_running/acc"] != reported["train/acc"]


def test_evaluation_draws_no_random_numbers(data_dir: Path) -> None:
    # Exact resume needs evaluation to leave every random stream as it found it.
    run = build_run(_noisy_spec(), data_dir)
    trainer = Trainer(run, LoopState(lr=0.01), Recorder(), None)
    before = (run.noise_gen.get_state(), run.data_gen.get_state(), torch.get_rng_state())
    values = collect(trainer, run, LoopState(lr=0.01))
    after = (run.noise_gen.get_state(), run.data_gen.get_state(), torch.get_rng_state())
    assert {"train/acc", "val/acc", "test/acc"} <= set(values)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert run.model.training  # evaluation hands the model back in training mode


def test_train_eval_size_zero_reports_no_train_scores(data_dir: Path) -> None:
    rec = Recorder()
    engine.train(_noisy_spec(epochs=1, train_eval_size=0), callbacks=rec, data_dir=data_dir)
    names = set(rec.metrics[-1][2])
    assert {"train_running/loss", "train_running/acc", "val/acc"} <= names
    assert not names & {"train/loss", "train/acc"}


def test_a_subset_larger_than_the_split_is_the_whole_split(data_dir: Path, tmp_path: Path) -> None:
    spec, rec = _noisy_spec(epochs=1, train_eval_size=100_000), Recorder()
    engine.train(spec, callbacks=rec, data_dir=data_dir, checkpoint_path=tmp_path / "c.pt")
    run = build_run(spec, data_dir)
    ckpt.restore(run, ckpt.load(tmp_path / "c.pt"))
    _, acc = _eval_mode_scores(run.model, *run.data.tensors["train"])
    assert rec.metrics[-1][2]["train/acc"] == acc
