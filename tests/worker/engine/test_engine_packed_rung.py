"""Packed members pause at their rung (an adaptive sweep's, core/search.py) each with its own
checkpoint, and the promoted ones resume from it, alone or packed anew, with the curves of a
pack that never paused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.worker.engine.engine_factories import STEPS_PER_EPOCH, Recorder
from tests.worker.engine.test_engine_packed import _pack, _specs
from worker import engine
from worker.engine.errors import Interrupted


class RungRecorder(Recorder):
    def __init__(self, pause_at_step: int | None) -> None:
        super().__init__()
        self.pause_at_step = pause_at_step


@pytest.mark.parametrize("rung", [STEPS_PER_EPOCH, STEPS_PER_EPOCH + 4])
def test_a_packs_members_pause_at_their_rung_and_the_promoted_resume_to_the_whole_curves(
    data_dir: Path, tmp_path: Path, rung: int
) -> None:
    specs = _specs()
    _, whole = _pack(specs, data_dir)
    paths = [tmp_path / f"m{i}.pt" for i in range(3)]
    first = [RungRecorder(rung) for _ in specs]
    outcomes, _ = _pack(specs, data_dir, first, paths)
    for o, rec in zip(outcomes, first, strict=True):
        assert isinstance(o, Interrupted) and o.reason == "rung" and o.step == rung
        assert rec.checkpoints[-1][0] == rung  # each member's own checkpoint, at the rung
    # Members 0 and 2 promoted to the end: a pack of two resumed from their checkpoints;
    # member 1 alone (a pack of one), as ASHA promotes one arm at a time.
    again = {k: RungRecorder(None) for k in (0, 1, 2)}
    _pack([specs[0], specs[2]], data_dir, [again[0], again[2]], [paths[0], paths[2]])
    _pack([specs[1]], data_dir, [again[1]], [paths[1]])
    for k in range(3):
        assert again[k].started[0]["resumed_from_step"] == rung
        assert first[k].metrics + again[k].metrics == whole[k].metrics, k  # exact


def test_a_pack_resumed_at_its_rung_pauses_again_without_a_step(
    data_dir: Path, tmp_path: Path
) -> None:
    specs = _specs()[:2]
    paths = [tmp_path / f"m{i}.pt" for i in range(2)]
    _pack(specs, data_dir, [RungRecorder(STEPS_PER_EPOCH) for _ in specs], paths)
    again = [RungRecorder(STEPS_PER_EPOCH) for _ in specs]  # retried before a decision
    outcomes, _ = _pack(specs, data_dir, again, paths)
    assert all(isinstance(o, Interrupted) and o.step == STEPS_PER_EPOCH for o in outcomes)
    assert all(r.metrics == [] for r in again)


def test_a_rung_at_the_packs_end_does_not_pause(data_dir: Path) -> None:
    specs = _specs()[:2]
    outcomes, _ = _pack(specs, data_dir, [RungRecorder(3 * STEPS_PER_EPOCH) for _ in specs])
    assert all(isinstance(o, engine.TrainResult) for o in outcomes)
