"""A run paused at a rung (Callbacks.pause_at_step) and resumed later trains exactly as one
that never paused: no step twice, the same curve (core/search.py promotes such runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.worker.engine.engine_factories import STEPS_PER_EPOCH, Recorder, make_spec
from worker import engine
from worker.engine.errors import Interrupted


class RungRecorder(Recorder):
    def __init__(self, pause_at_step: int | None) -> None:
        super().__init__()
        self.pause_at_step = pause_at_step


@pytest.mark.parametrize("rung", [STEPS_PER_EPOCH, STEPS_PER_EPOCH + 4])
def test_a_run_paused_at_its_rung_resumes_to_the_uninterrupted_curve(
    data_dir: Path, tmp_path: Path, rung: int
) -> None:
    spec = make_spec(model={"arch": "mlp", "hidden": [32, 32], "dropout": 0.2})
    whole = Recorder()
    engine.train(spec, callbacks=whole, data_dir=data_dir)
    path = tmp_path / "ckpt.pt"
    first = RungRecorder(rung)
    with pytest.raises(Interrupted) as stopped:
        engine.train(spec, callbacks=first, data_dir=data_dir, checkpoint_path=path)
    assert stopped.value.reason == "rung" and stopped.value.step == rung
    assert first.checkpoints[-1][0] == rung  # the checkpoint is at the rung's step
    second = RungRecorder(None)  # promoted to the end
    engine.train(spec, callbacks=second, data_dir=data_dir, checkpoint_path=path)
    assert second.started[0]["resumed_from_step"] == rung
    assert first.metrics + second.metrics == whole.metrics


def test_a_rung_at_the_runs_end_does_not_pause(data_dir: Path) -> None:
    rec = RungRecorder(3 * STEPS_PER_EPOCH)
    result = engine.train(make_spec(), callbacks=rec, data_dir=data_dir)
    assert result.steps == 3 * STEPS_PER_EPOCH


def test_a_run_resumed_at_its_rung_pauses_again_without_a_step(
    data_dir: Path, tmp_path: Path
) -> None:
    path, spec = tmp_path / "ckpt.pt", make_spec()
    with pytest.raises(Interrupted):
        engine.train(
            spec, callbacks=RungRecorder(STEPS_PER_EPOCH), data_dir=data_dir, checkpoint_path=path
        )
    again = RungRecorder(STEPS_PER_EPOCH)  # a retry of the paused member, before a decision
    with pytest.raises(Interrupted) as stopped:
        engine.train(spec, callbacks=again, data_dir=data_dir, checkpoint_path=path)
    assert stopped.value.step == STEPS_PER_EPOCH and again.metrics == []
