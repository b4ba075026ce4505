"""One member of a pack: its own built run, loop position, callbacks and checkpoint file.

A member is a `Trainer` that never steps by itself: the pack steps every member at once and
uses the member's own evaluation, early stopping, checkpoint and result code, so what a
member reports is computed exactly as it would be alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.engine.callbacks import Callbacks, TrainResult
from worker.engine.errors import TrainingError
from worker.engine.setup import build_run
from worker.engine.trainer import ForkStart, Trainer, noise_from, start_position


@dataclass
class PackMember:
    """What the caller hands in for one member (the arguments of `engine.train`)."""

    spec: Any
    callbacks: Callbacks
    checkpoint_path: Path | None = None
    resume_from: Path | None = None
    keep_dir: Path | None = None  # where it keeps the checkpoints it may be forked at
    fork: ForkStart | None = None  # a fork's start (every member of a pack at one step)


Outcome = TrainResult | TrainingError  # a member's end: its result, or why it left the pack


class MemberTrainer(Trainer):
    """A member's run and loop; the pack drives its steps with the `Trainer`'s own hooks."""

    def __init__(self, member: PackMember, data_dir: Path) -> None:
        fork = member.fork
        run = build_run(member.spec, Path(data_dir), noise_from=noise_from(fork))
        source = member.resume_from if member.resume_from is not None else member.checkpoint_path
        loop, self.resumed = start_position(run, source, fork)
        super().__init__(run, loop, member.callbacks, member.checkpoint_path, member.keep_dir)

    def start(self) -> None:
        """What `Trainer.fit` does before its first step."""
        self._begin(resumed=self.resumed)

    def begin_epoch(self) -> None:
        if self.loop.perm is None:
            self._start_epoch()

    def end_epoch(self) -> bool:
        """Epoch bookkeeping and evaluation (checkpoints are the pack's); True if the last."""
        return self._close_epoch()

    def _after_evaluation(self) -> None:
        """A member's weights live in the pack's stacked model until the pack stores them:
        the pack writes the kept checkpoint after the evaluation (`write_kept`)."""

    def keep_due(self) -> bool:
        return self._keep_due

    def keeps_between_steps(self) -> bool:
        return self.keep is not None and self.keep.due_between_steps(self.loop.step)

    def keep_between_steps(self) -> None:
        self._keep_between_steps()

    def before_step(self) -> None:
        self._step_schedules()

    def checkpoint_due(self, last: bool, since: float) -> bool:
        return self._checkpoint_due(last, since)

    def stage_checkpoint(self, *, durable: bool = True) -> Path | None:
        return self._stage_checkpoint(durable=durable)

    def commit_checkpoint(self, staged: Path | None) -> None:
        self._commit_checkpoint(staged)

    def finish(self) -> TrainResult:
        return self._conclude()
