"""Packed training: members equal their alone runs; per-member noise, cancel, divergence, resume."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch import Tensor, nn

from activations import create
from tests.worker.engine.engine_factories import STEPS_PER_EPOCH, Recorder, make_spec
from worker import engine
from worker.engine import checkpoint as ckpt
from worker.engine import metrics
from worker.engine.errors import Diverged, Interrupted
from worker.engine.evaluation import evaluate, member_scores
from worker.engine.packed import PackMember, train_pack
from worker.engine.packed.stacked import StackedMLP, _noisy_relu
from worker.engine.setup import build_run

# Relative tolerance of a packed member's metrics against the same experiment alone: the
# batched matmul sums in another order than addmm (seen: worst 1.4e-7 over 3 epochs).
REL_TOL = 1e-5

MEMBERS = [  # (seed, sigma, lr, weight decay): everything the packable set lets differ
    (0, 0.1, 0.01, 0.0),
    (1, 0.5, 0.005, 0.01),
    (2, 0.0, 0.02, 0.0),
]


def _specs(**over):
    optimizer = over.pop("optimizer", {})  # every member's, not only the first's
    return [
        make_spec(
            seed=seed,
            activation={"name": "noisy_relu", "params": {"sigma": sigma}},
            optimizer={"lr": lr, "weight_decay": wd, **optimizer},
            **over,
        )
        for seed, sigma, lr, wd in MEMBERS
    ]


def _alone(spec, data_dir: Path) -> Recorder:
    rec = Recorder()
    engine.train(spec, callbacks=rec, data_dir=data_dir)
    return rec


def _pack(specs, data_dir: Path, recs=None, paths=None):
    recs = recs or [Recorder() for _ in specs]
    paths = paths or [None] * len(specs)
    members = [PackMember(s, r, p) for s, r, p in zip(specs, recs, paths, strict=True)]
    return train_pack(members, data_dir=data_dir), recs


def _assert_close(alone: list, packed: list) -> None:
    assert [(s, e) for s, e, _ in alone] == [(s, e) for s, e, _ in packed]
    for (_, _, a), (_, _, p) in zip(alone, packed, strict=True):
        assert set(a) == set(p)
        assert {"train/loss", "train/acc", "train_running/loss", "train_running/acc"} <= set(a)
        for name in a:
            assert p[name] == pytest.approx(a[name], rel=REL_TOL, abs=1e-6), name


@pytest.mark.parametrize(
    "optimizer",
    [
        {"name": "adam"},
        {"name": "adamw"},
        {"name": "sgd", "momentum": 0.9, "nesterov": True},
    ],
)
def test_packed_members_equal_alone_runs(data_dir: Path, optimizer) -> None:
    specs = _specs(optimizer=optimizer)
    outcomes, recs = _pack(specs, data_dir)
    assert all(isinstance(o, engine.TrainResult) for o in outcomes)
    for spec, rec in zip(specs, recs, strict=True):
        _assert_close(_alone(spec, data_dir).metrics, rec.metrics)


def test_lr_schedule_and_epoch_noise_schedule_pack(data_dir: Path) -> None:
    specs = _specs(
        noise_schedule={"kind": "linear", "start": 1.0, "end": 0.2, "unit": "epoch"},
        optimizer={"lr_schedule": {"kind": "cosine", "start": 1.0, "end": 0.1}},
        training={"train_eval_size": 300},  # a subset of each member's own training split
    )
    _, recs = _pack(specs, data_dir)
    # The noise ends at 0.2 of sigma, so the diagnostics compared below include every SNR.
    snrs = ("snr", "snr_unit_median", "snr_output", "snr_output_unit_median")
    diagnostics = {"act/layer1/dead_fraction", *(f"act/layer1/{n}" for n in snrs)}
    assert diagnostics <= set(recs[0].metrics[-1][2])
    for spec, rec in zip(specs, recs, strict=True):
        _assert_close(_alone(spec, data_dir).metrics, rec.metrics)


def test_a_pack_scores_every_split_in_its_stacked_pass(data_dir: Path, monkeypatch) -> None:
    # train/* too: no member falls back to a forward pass of its own on its training subset.
    def alone(*args, **kwargs):
        raise AssertionError("a member evaluated alone")

    monkeypatch.setattr(metrics, "evaluate", alone)
    specs = _specs(training={"epochs": 1, "diagnostics_every": 0, "train_eval_size": 300})
    outcomes, recs = _pack(specs, data_dir)
    assert all(isinstance(o, engine.TrainResult) for o in outcomes), outcomes
    assert all({"train/acc", "val/acc", "test/acc"} <= set(r.metrics[-1][2]) for r in recs)


def test_each_member_draws_its_own_sigma() -> None:
    sigmas, scales = [0.1, 0.5, 2.0], [1.0, 0.5, 1.0]
    units = []
    for sigma, scale in zip(sigmas, scales, strict=True):
        unit = create("noisy_relu", sigma=sigma)
        unit.noise_scale = scale
        unit.generator = torch.Generator().manual_seed(len(units))
        units.append(unit)
    out = _noisy_relu(torch.zeros(3, 200, 100), units)  # relu(0) = 0: the output is the noise
    for k, (sigma, scale) in enumerate(zip(sigmas, scales, strict=True)):
        std = sigma * scale
        assert out[k].mean().item() == pytest.approx(0.0, abs=5 * std / 141)
        assert out[k].std().item() == pytest.approx(std, rel=0.02)
    # Member 1 alone draws the same numbers from the same generator state.
    alone = create("noisy_relu", sigma=0.5)
    alone.noise_scale, alone.generator = 0.5, torch.Generator().manual_seed(1)
    assert torch.equal(alone(torch.zeros(200, 100)), out[1])


class CancelAt(Recorder):
    def __init__(self, step: int, reason: str = "cancel") -> None:
        super().__init__()
        self.at, self.reason = step, reason

    def should_stop(self) -> str | None:
        return self.reason if self.step >= self.at else None


def test_cancelled_member_leaves_and_the_others_go_on(data_dir: Path, tmp_path: Path) -> None:
    specs = _specs()
    recs = [Recorder(), CancelAt(20), Recorder()]
    paths = [tmp_path / f"m{i}.pt" for i in range(3)]
    outcomes, _ = _pack(specs, data_dir, recs, paths)
    assert isinstance(outcomes[1], Interrupted) and outcomes[1].reason == "cancel"
    assert paths[1].exists() and recs[1].checkpoints[-1][0] == 20  # cancel writes a checkpoint
    assert [s for s, _, _ in recs[1].metrics] == [STEPS_PER_EPOCH]
    for k in (0, 2):
        assert isinstance(outcomes[k], engine.TrainResult)
        _assert_close(_alone(specs[k], data_dir).metrics, recs[k].metrics)


def _sgd_ramp(seed: int, lr: float):
    # As in the trainer's divergence test: lr x 1e-8 in epoch 1, then ~lr/3 from epoch 2.
    schedule = {"kind": "linear", "start": 1e-8, "end": 1.0, "unit": "epoch"}
    return make_spec(seed=seed, optimizer={"name": "sgd", "lr": lr, "lr_schedule": schedule})


def test_diverging_members_fail_alone_with_their_metrics_kept(data_dir: Path) -> None:
    specs = [_sgd_ramp(0, 0.1), _sgd_ramp(1, 1e6), _sgd_ramp(2, 1e6)]  # two diverge at once
    outcomes, recs = _pack(specs, data_dir)
    for k in (1, 2):
        assert isinstance(outcomes[k], Diverged)
        with pytest.raises(Diverged) as alone:
            engine.train(specs[k], callbacks=Recorder(), data_dir=data_dir)
        assert (outcomes[k].step, outcomes[k].epoch) == (alone.value.step, alone.value.epoch)
        assert [s for s, _, _ in recs[k].metrics] == [STEPS_PER_EPOCH]
    assert isinstance(outcomes[0], engine.TrainResult)
    _assert_close(_alone(specs[0], data_dir).metrics, recs[0].metrics)


def test_stopped_pack_resumes_with_the_uninterrupted_curves(data_dir: Path, tmp_path: Path) -> None:
    specs = _specs()
    _, full = _pack(specs, data_dir)
    paths = [tmp_path / f"m{i}.pt" for i in range(3)]
    recs = [Recorder(), CancelAt(22, "shutdown"), Recorder()]
    outcomes, _ = _pack(specs, data_dir, recs, paths)
    assert all(isinstance(o, Interrupted) and o.reason == "shutdown" for o in outcomes)
    assert all(r.checkpoints[-1][0] == 22 for r in recs)  # every member at the same step
    again = [Recorder() for _ in specs]
    outcomes, _ = _pack(specs, data_dir, again, paths)
    assert all(r.started[0]["resumed_from_step"] == 22 for r in again)
    for k in range(3):
        assert recs[k].metrics + again[k].metrics == full[k].metrics  # exact, not approx


class Snapshots(Recorder):
    """Keeps a copy of every checkpoint this member writes, by step."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[int, Path] = {}

    def on_checkpoint(self, *, path: Path, step: int, epoch: int) -> None:
        super().on_checkpoint(path=path, step=step, epoch=epoch)
        self.files[step] = shutil.copy(path, path.with_suffix(f".{step}.pt"))


def test_pack_killed_between_member_checkpoints_resumes_with_the_uninterrupted_curves(
    data_dir: Path, tmp_path: Path
) -> None:
    # A kill between the members' checkpoint writes of one epoch end: member 0 already
    # wrote epoch 2's, members 1 and 2 still hold epoch 1's. Each continues from its own
    # step, and every curve is the uninterrupted pack's, exactly.
    specs = _specs(training={"epochs": 4, "checkpoint_interval_s": 0})
    _, full = _pack(specs, data_dir)
    snaps = [Snapshots() for _ in specs]
    _pack(specs, data_dir, snaps, [tmp_path / f"a{i}.pt" for i in range(3)])
    at = [2 * STEPS_PER_EPOCH, STEPS_PER_EPOCH, STEPS_PER_EPOCH]
    again = [Recorder() for _ in specs]
    members = [
        PackMember(spec, rec, tmp_path / f"b{i}.pt", snap.files[step])
        for i, (spec, rec, snap, step) in enumerate(zip(specs, again, snaps, at, strict=True))
    ]
    outcomes = train_pack(members, data_dir=data_dir)
    assert all(isinstance(o, engine.TrainResult) for o in outcomes)
    for k in range(3):
        assert again[k].started[0]["resumed_from_step"] == at[k]
        assert again[k].metrics == [m for m in full[k].metrics if m[0] > at[k]]


def test_a_pack_checkpoint_lands_for_every_member_or_for_none(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every member's file is written before any replaces its last one: a failure (or a
    # kill) while they are written leaves every member at the same, earlier step.
    specs = _specs(training={"epochs": 3, "checkpoint_interval_s": 0})
    paths = [tmp_path / f"m{i}.pt" for i in range(3)]
    stage, calls = ckpt.stage, []

    def failing_stage(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:  # epoch 2, the last member
            raise OSError("disk full")
        return stage(*args, **kwargs)

    monkeypatch.setattr(ckpt, "stage", failing_stage)
    with pytest.raises(OSError, match="disk full"):
        _pack(specs, data_dir, paths=paths)
    assert [ckpt.load(p)["loop"]["step"] for p in paths] == [STEPS_PER_EPOCH] * 3
    assert sorted(f.name for f in tmp_path.iterdir()) == ["m0.pt", "m1.pt", "m2.pt"]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_stacked_scores_equal_each_members_own_evaluation(task: str) -> None:
    gen = torch.Generator().manual_seed(0)
    k, n, width = 3, 250, 10 if task == "classification" else 1
    out = torch.randn(k, n, width, generator=gen)
    if task == "classification":
        y = torch.randint(0, width, (k, n), generator=gen)
    else:
        y = out.squeeze(-1) + 0.1 * torch.randn(k, n, generator=gen)
    scores = member_scores(task, out, y, batch_size=100)  # chunks of 100, 100 and 50
    for j in range(k):
        own = evaluate(nn.Identity(), out[j], y[j], task=task, batch_size=100, outputs=out[j])
        assert scores[j] == pytest.approx(own, rel=1e-6)


@pytest.fixture
def two_threads():
    """Two torch threads, as on the CI machine: whether MKL splits a product over threads
    depends on the thread count, and these tests pin the count they were checked with."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("two_threads")
def test_a_members_step_rounds_alike_in_packs_of_any_size(data_dir: Path) -> None:
    # Members resumed at different steps train as smaller packs: their curves stay the
    # uninterrupted pack's only if a member's outputs and gradients are bit for bit the same
    # in a pack of one (where BLAS may thread one product) and in a larger one.
    runs = [build_run(make_spec(seed=s, activation={"name": "relu"}), data_dir) for s in range(3)]

    def step(members: list) -> tuple[Tensor, list[Tensor]]:
        model = StackedMLP([copy.deepcopy(r.model) for r in members])
        x = torch.stack([r.data.tensors["train"][0][:100] for r in members])
        y = torch.stack([r.data.tensors["train"][1][:100] for r in members])
        out = model.forward(x)
        F.cross_entropy(out.transpose(1, 2), y, reduction="none").mean(1).sum().backward()
        return out.detach(), model.split(model.grad)

    (out3, grads3), (out1, grads1) = step(runs), step(runs[:1])
    assert torch.equal(out3[:1], out1)
    assert all(torch.equal(g3[:1], g1) for g3, g1 in zip(grads3, grads1, strict=True))


@pytest.mark.parametrize(
    ("dataset", "model", "batch_size", "optimizer", "lrs"),
    [
        # The e2e kill test's pack: the fused Adam kernel's scalar tail (a buffer's last
        # `numel % 8` elements) updated member 0's head bias in a pack of one, the vector
        # loop in a pack of four; the curves parted at step 4 (seen in CI).
        (
            {"name": "mnist1d", "num_samples": 1000},
            {"arch": "mlp", "hidden": [32, 32]},
            50,
            {"name": "adam"},
            [1e-2],
        ),
        # Odd widths and batches: member k's activations start at k * B * F elements, off
        # 16 bytes for odd k, where MKL's product with the 10-wide head rounds otherwise;
        # two lrs, so the optimizer takes each member's slices, not the whole buffer.
        (
            {"name": "digits"},
            {"arch": "mlp", "hidden": [33, 17]},
            37,
            {"name": "sgd", "momentum": 0.9},
            [1e-2, 3e-3],
        ),
        # A batch of 9: a product small enough that MKL on two threads split it otherwise
        # for one member than for four, before every shard ran on one intra-op thread.
        (
            {"name": "digits"},
            {"arch": "mlp", "hidden": [24]},
            9,
            {"name": "adam"},
            [1e-2],
        ),
    ],
)
@pytest.mark.usefixtures("two_threads")
def test_a_members_curves_are_the_same_in_a_pack_of_one_and_of_four(
    data_dir: Path, dataset: dict, model: dict, batch_size: int, optimizer: dict, lrs: list
) -> None:
    # A pack resumed as smaller packs (members checkpointed at different steps) keeps the
    # uninterrupted curves only if no step of a member depends on how many share the pack.
    specs = [
        make_spec(
            seed=seed,
            dataset=dataset,
            model=model,
            activation={"name": "noisy_relu", "params": {"sigma": sigma}},
            training={"epochs": 3, "batch_size": batch_size},
            optimizer={**optimizer, "lr": lrs[k % len(lrs)]},
        )
        for k, (seed, sigma) in enumerate([(0, 0.1), (0, 0.5), (1, 0.1), (1, 0.5)])
    ]
    _, four = _pack(specs, data_dir)
    for k, spec in enumerate(specs):
        _, (one,) = _pack([spec], data_dir)
        assert one.metrics == four[k].metrics, k  # exact, not approx


def test_members_that_cannot_stack_train_alone(data_dir: Path) -> None:
    specs = _specs()
    specs[2] = make_spec(seed=2, model={"arch": "mlp", "hidden": [32, 32], "dropout": 0.2})
    outcomes, recs = _pack(specs, data_dir)
    assert all(isinstance(o, engine.TrainResult) for o in outcomes)
    assert recs[2].metrics == _alone(specs[2], data_dir).metrics


def test_final_accuracies_packed_and_alone_are_statistically_indistinguishable(
    data_dir: Path,
) -> None:
    # Welch's two-sample t-test on final test accuracy over 6 seeds, long enough (6 epochs)
    # for float-order differences to grow: packed and alone must not differ at the 5% level.
    specs = [make_spec(seed=seed, training={"epochs": 6}) for seed in range(6)]
    outcomes, _ = _pack(specs, data_dir)
    packed = [o.summary["test/acc"] for o in outcomes if isinstance(o, engine.TrainResult)]
    alone = [
        engine.train(s, callbacks=engine.Callbacks(), data_dir=data_dir).summary["test/acc"]
        for s in specs
    ]
    assert len(packed) == len(alone) == 6
    if packed != alone:
        assert stats.ttest_ind(packed, alone, equal_var=False).pvalue >= 0.05
    assert abs(sum(packed) - sum(alone)) / 6 < 0.05
