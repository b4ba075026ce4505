"""One member of a pack: its own built run, loop position, callbacks and checkpoint file.

A member is a `Trainer` that never steps by itself: the pack steps every member at once and
uses the member's own evaluation, early stopping, checkpoint and result code, so what a
member reports is computed exactly as it would be alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.engine import checkpoint as ckpt
from worker.engine.callbacks import Callbacks, TrainResult
from worker.engine.errors import TrainingError
from worker.engine.setup import build_run
from worker.engine.state import LoopState
from worker.engine.trainer import Trainer, log


@dataclass
class PackMember:
    """What the caller hands in for one member (the arguments of `engine.train`)."""

    spec: Any
    callbacks: Callbacks
    checkpoint_path: Path | None = None
    resume_from: Path | None = None


Outcome = TrainResult | TrainingError  # a member's end: its result, or why it left the pack


class MemberTrainer(Trainer):
    """A member's run and loop; the pack drives its steps."""

    def __init__(self, member: PackMember, data_dir: Path) -> None:
        run = build_run(member.spec, Path(data_dir))
        loop, self.resumed = LoopState(lr=member.spec.optimizer.lr), False
        source = member.resume_from if member.resume_from is not None else member.checkpoint_path
        if source is not None and Path(source).exists():
            try:
                payload = ckpt.load(Path(source))
            except ckpt.UnreadableCheckpoint as exc:
                log.warning("%s; starting from scratch", exc)
                run.notes.append(f"unreadable checkpoint ignored, started from scratch: {exc}")
            else:
                loop, self.resumed = ckpt.restore(run, payload), True
        super().__init__(run, loop, member.callbacks, member.checkpoint_path)

    def start(self) -> None:
        """What `Trainer.fit` does before its first step."""
        run, loop = self.run, self.loop
        self.cb.on_start(
            total_steps=run.total_steps,
            total_epochs=run.total_epochs,
            resumed_from_step=loop.step if self.resumed else 0,
        )
        if self.lr_constant:
            self._set_lr(run.lr_schedule.at(0))
        if loop.perm is not None:
            self._apply_epoch_schedules()

    def begin_epoch(self) -> None:
        if self.loop.perm is None:
            self._start_epoch()

    def before_step(self) -> None:
        """The schedules' per-step values, as `Trainer._train_epoch` sets them."""
        step = self.loop.step
        if self.noise_per_step:
            self._set_noise(self.run.noise_schedule.value(step))
        if self.lr_per_step:
            self._set_lr(self.run.lr_schedule.value(step))

    def end_epoch(self) -> bool:
        """Epoch bookkeeping and evaluation (checkpoints are the pack's); True if it evaluated."""
        loop = self.loop
        loop.epoch += 1
        loop.batch, loop.perm = 0, None
        last = loop.step >= self.run.total_steps
        if loop.epoch % self.t.eval_every == 0 or last:
            self._evaluate()
            return True
        return False

    def checkpoint(self, *, durable: bool = True) -> None:
        self._checkpoint(durable=durable)

    def finish(self) -> TrainResult:
        if not self.loop.finished:
            self._finish()
        return self._result()

    @property
    def done(self) -> bool:
        loop = self.loop
        return loop.finished or loop.step >= self.run.total_steps or loop.early.stopped
