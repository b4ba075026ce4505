"""Kept checkpoints and forks in the engine: a fork that changes nothing continues exactly as
its parent did; a fork that turns the noise off differs from step k on and not before; a
changed seed changes the noise draws only; retention thins and a full disk is a clear failure."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
import torch

from core.artifacts import kept_steps
from tests.worker.engine.engine_factories import STEPS_PER_EPOCH, Recorder, make_spec
from worker import engine
from worker.engine.errors import TrainingError

GULCEHRE = {
    "model": {"arch": "mlp", "hidden": [16, 16], "batch_norm": True},
    "activation": {"name": "noisy_hard_tanh", "params": {}},
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
}
UNITS = {"noisy_relu": {}, "noisy_hard_tanh": GULCEHRE}
NOISE_OFF = {"kind": "constant", "start": 0.0, "end": 0.0}


def _parent(data_dir: Path, tmp_path: Path, **over: Any) -> tuple[Any, Recorder, Path]:
    spec = make_spec(**over)
    rec, keep = Recorder(), tmp_path / "parent" / "kept"
    engine.train(spec, callbacks=rec, data_dir=data_dir, keep_dir=keep)
    return spec, rec, keep


def _fork(
    spec: Any, data_dir: Path, keep: Path, step: int, *, restart: bool = False, **kw: Any
) -> Recorder:
    rec = Recorder()
    start = engine.ForkStart(keep / f"step-{step}.pt", step, restart)
    engine.train(spec, callbacks=rec, data_dir=data_dir, fork=start, **kw)
    return rec


def _after(rec: Recorder, step: int) -> list[tuple[int, dict[str, float]]]:
    """The evaluations after `step`, without what each attempt's clock measured."""
    clocked = {"time/elapsed_s", "time/steps_per_s"}
    return [
        (s, {k: v for k, v in values.items() if k not in clocked})
        for s, _, values in rec.metrics
        if s > step
    ]


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_a_fork_that_changes_nothing_continues_exactly(
    data_dir: Path, tmp_path: Path, unit: str
) -> None:
    spec, parent, keep = _parent(data_dir, tmp_path, **UNITS[unit])
    assert kept_steps(keep) == [15, 30, 45]  # every evaluation's, by default
    fork = _fork(spec, data_dir, keep, STEPS_PER_EPOCH)
    assert (
        fork.notes[0] == f"forked: started from the parent's checkpoint at step {STEPS_PER_EPOCH}"
    )
    assert _after(fork, STEPS_PER_EPOCH) == _after(parent, STEPS_PER_EPOCH)
    assert len(_after(fork, STEPS_PER_EPOCH)) == 2


def test_a_fork_mid_epoch_at_a_kept_step_continues_exactly(data_dir: Path, tmp_path: Path) -> None:
    spec, parent, keep = _parent(data_dir, tmp_path, training={"keep_checkpoints": {"at": [22]}})
    assert kept_steps(keep) == [15, 22, 30, 45]
    assert _after(_fork(spec, data_dir, keep, 22), 22) == _after(parent, 22)


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_noise_off_at_k_differs_after_k_and_not_before(
    data_dir: Path, tmp_path: Path, unit: str
) -> None:
    spec, parent, keep = _parent(data_dir, tmp_path, **UNITS[unit])
    quiet = spec.model_copy(update={"noise_schedule": type(spec.noise_schedule)(**NOISE_OFF)})
    fork = _fork(quiet, data_dir, keep, STEPS_PER_EPOCH)
    before = [m for m in parent.metrics if m[0] <= STEPS_PER_EPOCH]
    assert before and all(m[0] > STEPS_PER_EPOCH for m in fork.metrics)  # before k: the parent's
    ours, theirs = _after(fork, STEPS_PER_EPOCH), _after(parent, STEPS_PER_EPOCH)
    assert [s for s, _ in ours] == [s for s, _ in theirs]
    for (_, a), (_, b) in zip(ours, theirs, strict=True):
        assert a["train/loss"] != b["train/loss"]
    # The fork's noise level is the override's from its first step on.
    assert ours and all(v["noise/scale"] == 0.0 for _, v in ours)


def test_a_changed_seed_changes_the_noise_not_the_start(data_dir: Path, tmp_path: Path) -> None:
    spec, parent, keep = _parent(data_dir, tmp_path)
    other = spec.model_copy(update={"seed": spec.seed + 7})
    a = _fork(other, data_dir, keep, STEPS_PER_EPOCH)
    b = _fork(other, data_dir, keep, STEPS_PER_EPOCH)
    assert _after(a, STEPS_PER_EPOCH) == _after(b, STEPS_PER_EPOCH)  # deterministic
    assert _after(a, STEPS_PER_EPOCH) != _after(parent, STEPS_PER_EPOCH)


def test_extending_a_finished_run_continues_from_its_last_step(
    data_dir: Path, tmp_path: Path
) -> None:
    _, parent, keep = _parent(data_dir, tmp_path, noise_schedule=NOISE_OFF)
    longer = make_spec(noise_schedule=NOISE_OFF, training={"epochs": 4})
    fork = _fork(longer, data_dir, keep, 3 * STEPS_PER_EPOCH)
    assert [s for s, _, _ in fork.metrics] == [4 * STEPS_PER_EPOCH]
    assert fork.metrics[-1][2]["train/loss"] != parent.metrics[-1][2]["train/loss"]


def test_a_restarted_noise_clock_starts_the_schedule_at_k(data_dir: Path, tmp_path: Path) -> None:
    linear = {"kind": "linear", "start": 1.0, "end": 0.0}
    spec, _, keep = _parent(data_dir, tmp_path, noise_schedule=linear)
    going_on = _fork(spec, data_dir, keep, STEPS_PER_EPOCH)
    restarted = _fork(spec, data_dir, keep, STEPS_PER_EPOCH, restart=True)
    level = {s: v["noise/scale"] for s, _, v in restarted.metrics if "noise/scale" in v}
    level_on = {s: v["noise/scale"] for s, _, v in going_on.metrics if "noise/scale" in v}
    assert level and all(level[s] > level_on[s] for s in level)  # the ramp begins again at k


def test_retention_thins_past_max_kept_and_keeps_at_and_best(
    data_dir: Path, tmp_path: Path
) -> None:
    keep_spec = {"every": 1, "max_kept": 2, "at": [7], "best": True}
    _, rec, keep = _parent(
        data_dir, tmp_path, training={"epochs": 5, "keep_checkpoints": keep_spec}
    )
    # best_metric is val/acc, mode max: the first of the best evaluations.
    best = max((v["val/acc"], -s) for s, _, v in rec.metrics)
    periodic = {30, 60}  # evaluations 2 and 4: `every` doubled once
    assert set(kept_steps(keep)) == periodic | {7, -best[1]}


def test_no_kept_checkpoints_when_every_is_zero(data_dir: Path, tmp_path: Path) -> None:
    _, _, keep = _parent(data_dir, tmp_path, training={"keep_checkpoints": {"every": 0}})
    assert kept_steps(keep) == []


def test_a_full_disk_fails_clearly_and_keeps_what_was_written(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save, calls = torch.save, []

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) > 2:  # the third checkpoint finds the disk full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    rec, keep = Recorder(), tmp_path / "kept"
    with pytest.raises(TrainingError, match=r"no space left for the checkpoint.*free space"):
        engine.train(make_spec(), callbacks=rec, data_dir=data_dir, keep_dir=keep)
    assert rec.metrics  # every evaluation so far was reported
    assert kept_steps(keep) and not list(keep.glob(".*.tmp"))  # no torn file left


def test_a_fork_from_a_missing_checkpoint_says_so(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="the parent's checkpoint at step 15 is gone"):
        _fork(make_spec(), data_dir, tmp_path, 15)


def test_pack_members_keep_checkpoints_a_fork_continues_from(
    data_dir: Path, tmp_path: Path
) -> None:
    from worker.engine.packed import PackMember, train_pack

    specs = [make_spec(seed=seed, training={"keep_checkpoints": {"at": [22]}}) for seed in (0, 1)]
    recs, keeps = [Recorder(), Recorder()], [tmp_path / "a", tmp_path / "b"]
    train_pack(
        [PackMember(s, r, None, None, k) for s, r, k in zip(specs, recs, keeps, strict=True)],
        data_dir=data_dir,
    )
    assert [kept_steps(k) for k in keeps] == [[15, 22, 30, 45]] * 2
    # Alone after the fork, the member goes on as it did in the pack (the pack's batched
    # matmul sums in another order: equal within the packing tests' tolerance).
    fork = _fork(specs[1], data_dir, keeps[1], 22)
    ours, theirs = _after(fork, 22), _after(recs[1], 22)
    assert [s for s, _ in ours] == [s for s, _ in theirs] == [30, 45]
    for (_, a), (_, b) in zip(ours, theirs, strict=True):
        assert a["val/loss"] == pytest.approx(b["val/loss"], rel=1e-5)


def test_forks_pack_together_and_continue_as_their_parents(data_dir: Path, tmp_path: Path) -> None:
    from worker.engine.packed import PackMember, train_pack

    specs = [make_spec(seed=seed) for seed in (0, 1)]
    parents, keeps = [Recorder(), Recorder()], [tmp_path / "a", tmp_path / "b"]
    train_pack(
        [PackMember(s, r, None, None, k) for s, r, k in zip(specs, parents, keeps, strict=True)],
        data_dir=data_dir,
    )
    forks = [Recorder(), Recorder()]
    members = [
        PackMember(s, r, None, None, None, engine.ForkStart(k / "step-15.pt", 15))
        for s, r, k in zip(specs, forks, keeps, strict=True)
    ]
    train_pack(members, data_dir=data_dir)
    for fork, parent in zip(forks, parents, strict=True):
        assert fork.notes[0].startswith("forked: started from the parent's checkpoint at step 15")
        ours, theirs = _after(fork, 15), _after(parent, 15)
        assert [s for s, _ in ours] == [s for s, _ in theirs] == [30, 45]
        for (_, a), (_, b) in zip(ours, theirs, strict=True):
            assert a["val/loss"] == pytest.approx(b["val/loss"], rel=1e-5)
