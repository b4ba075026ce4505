"""The training loop: steps, schedules, evaluation, early stopping, checkpoints, callbacks."""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.spec.horizon import position
from worker.engine import checkpoint as ckpt
from worker.engine.callbacks import Callbacks, TrainResult
from worker.engine.errors import Diverged, Interrupted, TimeLimitExceeded, TrainingError
from worker.engine.evaluation import (
    compact_predictions,
    count_hits,
    example_hits,
    task_functions,
)
from worker.engine.metrics import KnownOutputs, KnownScores, collect, eval_set
from worker.engine.retention import Retention
from worker.engine.setup import Run, build_run
from worker.engine.state import LoopState

log = logging.getLogger("actlab.engine")


@dataclass(frozen=True)
class ForkStart:
    """Where a fork starts: its parent's kept checkpoint at `step` (docs/forks.md). Every
    attempt of a fork gets it; only one without a checkpoint of its own starts there.
    `restart_noise`: the noise schedule's clock starts at `step` instead of going on."""

    checkpoint: Path
    step: int
    restart_noise: bool = False


def train(
    spec: Any,
    *,
    callbacks: Callbacks,
    data_dir: Path,
    checkpoint_path: Path | None = None,
    resume_from: Path | None = None,
    keep_dir: Path | None = None,
    fork: ForkStart | None = None,
) -> TrainResult:
    """Train `spec` to the end, writing checkpoints to `checkpoint_path`; resume from
    `resume_from` (default: `checkpoint_path`) when that file exists, else start from the
    fork's parent checkpoint, if a fork. Kept checkpoints go to `keep_dir`."""
    run = build_run(spec, Path(data_dir), noise_from=noise_from(fork))
    source = resume_from if resume_from is not None else checkpoint_path
    loop, resumed = start_position(run, source, fork)
    return Trainer(run, loop, callbacks, checkpoint_path, keep_dir).fit(resumed=resumed)


def noise_from(fork: ForkStart | None) -> int:
    return fork.step if fork is not None and fork.restart_noise else 0


def start_position(
    run: Run, source: Path | None, fork: ForkStart | None = None
) -> tuple[LoopState, bool]:
    """The loop position to train `run` from: `source`'s checkpoint when it exists and
    reads, else the fork's parent checkpoint (a fork), else the start; and whether it
    resumed (from its own checkpoint)."""
    if source is not None and Path(source).exists():
        try:
            payload = ckpt.load(Path(source))
        except ckpt.UnreadableCheckpoint as exc:
            # Training is deterministic: starting over reproduces the lost curve exactly.
            log.warning("%s; starting from scratch", exc)
            run.notes.append(f"unreadable checkpoint ignored, started from scratch: {exc}")
        else:
            return ckpt.restore(run, payload), True
    if fork is not None:
        if not Path(fork.checkpoint).exists():
            raise TrainingError(
                f"the parent's checkpoint at step {fork.step} is gone ({fork.checkpoint.name})"
            )
        try:
            payload = ckpt.load(fork.checkpoint)
        except ckpt.UnreadableCheckpoint as exc:
            raise TrainingError(f"the parent's checkpoint at step {fork.step}: {exc}") from exc
        run.notes.append(f"forked: started from the parent's checkpoint at step {fork.step}")
        return ckpt.restore_fork(run, payload, step=fork.step), False
    return LoopState(lr=run.spec.optimizer.lr), False


class Trainer:
    """Runs one built `Run` from the position in `loop`."""

    def __init__(
        self,
        run: Run,
        loop: LoopState,
        callbacks: Callbacks,
        checkpoint_path: Path | None,
        keep_dir: Path | None = None,
    ) -> None:
        self.run, self.loop, self.cb = run, loop, callbacks
        self.path = Path(checkpoint_path) if checkpoint_path is not None else None
        keep = run.spec.training.keep_checkpoints
        self.keep = Retention(keep, keep_dir) if keep_dir is not None else None
        self._keep_due = False  # the evaluation just taken keeps its checkpoint
        self.t = run.spec.training
        self.loss_fn, _ = task_functions(run.data.info.task)
        self.predict = compact_predictions(run.data.info.task)
        # (prediction, target) of this epoch's steps not yet counted into loop.correct.
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.known_outputs: KnownOutputs | None = None  # eval outputs computed elsewhere
        self.known_scores: KnownScores | None = None  # and their loss and accuracy
        self.clip, self.params = self.t.grad_clip, list(run.model.parameters())
        self.poll_every = float(callbacks.poll_interval_s)
        self.progress_every = float(callbacks.progress_interval_s)
        self._clock0 = time.monotonic()
        self._elapsed0 = loop.elapsed_s
        self._next_poll = self._next_progress = 0.0
        self._last_checkpoint = time.monotonic()
        # Per-step schedule work only where it changes something (a few us a step otherwise).
        noise, lr = run.spec.noise_schedule, run.spec.optimizer.lr_schedule
        self.noise_per_step = noise.unit == "step" and bool(run.noisy_units)
        self.lr_constant = lr.kind == "constant" and lr.warmup == 0
        self.lr_per_step = lr.unit == "step" and not self.lr_constant

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, *, resumed: bool) -> TrainResult:
        self._begin(resumed=resumed)
        self._pause_at_rung()  # resumed at its rung already (a retried paused member)
        while not self.done:
            self._train_epoch()
        return self._conclude()

    @property
    def done(self) -> bool:
        loop = self.loop
        return loop.finished or loop.step >= self.run.total_steps or loop.early.stopped

    def _begin(self, *, resumed: bool) -> None:
        """What happens once before the first step (of this process)."""
        run, loop = self.run, self.loop
        self.cb.on_start(
            total_steps=run.total_steps,
            total_epochs=run.total_epochs,
            resumed_from_step=loop.step if resumed else 0,
        )
        for note in run.notes:
            self.cb.on_note(note)
        if self.lr_constant:
            self._set_lr(run.lr_schedule.at(0))
        if loop.perm is not None:  # resumed mid-epoch: per-epoch schedules hold this epoch's value
            self._apply_epoch_schedules()

    def _conclude(self) -> TrainResult:
        """The final evaluation and checkpoint (unless done already), and the result."""
        if not self.loop.finished:
            self._finish()
        return self._result()

    def _step_schedules(self) -> None:
        """The schedules' values at the coming step (per-step schedules only)."""
        run, step = self.run, self.loop.step
        if self.noise_per_step:
            self._set_noise(run.noise_schedule.advance_to(step))
        if self.lr_per_step:
            self._set_lr(run.lr_schedule.advance_to(step))

    def _train_epoch(self) -> None:
        run, loop = self.run, self.loop
        if loop.perm is None:
            self._start_epoch()
        assert loop.perm is not None
        x, y = run.data.tensors["train"]
        bs, n = self.t.batch_size, run.data.n_train
        per_step = self.noise_per_step or self.lr_per_step
        while loop.batch < run.steps_per_epoch and loop.step < run.total_steps:
            if per_step:
                self._step_schedules()
            end = n if loop.batch == run.steps_per_epoch - 1 else (loop.batch + 1) * bs
            idx = loop.perm[loop.batch * bs : end]
            self._step(x[idx], y[idx])
            loop.batch += 1
            loop.step += 1
            if loop.batch == run.steps_per_epoch:
                self._end_epoch()
                self._poll(epoch_end=True)  # a stop here lands exactly on the epoch boundary
                self._pause_at_rung()
                return
            if self.keep is not None and self.keep.due_between_steps(loop.step):
                self._keep_between_steps()
            self._poll()
            self._pause_at_rung()

    def _pause_at_rung(self) -> None:
        """At the callbacks' `pause_at_step` (unless the run ends there): a checkpoint, then
        Interrupted("rung"); the run resumes from it exactly when promoted."""
        stop, loop = self.cb.pause_at_step, self.loop
        if stop is not None and loop.step >= stop and not self.done:
            self._checkpoint()
            raise Interrupted("rung", step=loop.step, epoch=loop.current_epoch)

    def _start_epoch(self) -> None:
        run, loop = self.run, self.loop
        loop.perm = torch.randperm(run.data.n_train, generator=run.data_gen).to(run.device)
        loop.batch, loop.loss_sum, loop.correct, loop.seen = 0, 0.0, 0, 0
        self._pending.clear()
        self._apply_epoch_schedules()

    def _apply_epoch_schedules(self) -> None:
        run, loop = self.run, self.loop
        if run.spec.noise_schedule.unit == "epoch":
            self._set_noise(run.noise_schedule.advance_to(loop.epoch))
        if run.spec.optimizer.lr_schedule.unit == "epoch" and not self.lr_constant:
            self._set_lr(run.lr_schedule.advance_to(loop.epoch))

    def _step(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        run, loop = self.run, self.loop
        if run.bf16:
            with torch.autocast(run.device.type, dtype=torch.bfloat16):
                out = run.forward(xb).float()
        else:  # no autocast context at all: it costs a few microseconds a step even disabled
            out = run.forward(xb)
        loss = self.loss_fn(out, yb)
        value = loss.item()  # one host sync a step: divergence is caught at the step it happens
        if not math.isfinite(value):
            raise Diverged(step=loop.step + 1, epoch=loop.epoch + 1, loss=value)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        run.optimizer.step()
        loop.loss_sum += value * len(yb)
        self._pending.append((self.predict(out), yb))
        loop.seen += len(yb)

    def _set_noise(self, scale: float) -> None:
        self.loop.noise_scale = scale
        for unit in self.run.noisy_units:
            # A plain float attribute, set past nn.Module.__setattr__'s parameter, buffer and
            # submodule checks: they cost about 1.3 us a unit, every step.
            vars(unit)["noise_scale"] = scale

    def noise_scale_now(self) -> float:
        """The noise schedule's value at the last step taken (or the epoch just trained)."""
        run, unit = self.run, self.run.spec.noise_schedule.unit
        # The API's spec preview maps steps to t with the same function.
        return float(
            run.noise_schedule.at(position(unit, max(self.loop.step - 1, 0), run.steps_per_epoch))
        )

    def _set_lr(self, multiplier: float) -> None:
        lr = self.run.spec.optimizer.lr * multiplier
        self.loop.lr = lr
        for group in self.run.optimizer.param_groups:
            group["lr"] = lr

    # -- epoch end: evaluation, early stopping, checkpoints -----------------------------------
    def _count_pending_hits(self) -> None:
        if self._pending:
            preds = torch.cat([p for p, _ in self._pending])
            targets = torch.cat([t for _, t in self._pending])
            self.loop.correct += count_hits(self.run.data.info.task, preds, targets)
            self._pending.clear()

    def _end_epoch(self) -> None:
        last = self._close_epoch()
        if self._checkpoint_due(last, self._last_checkpoint) and not self.loop.early.stopped:
            # Tiny epochs would otherwise spend more time writing checkpoints than training.
            self._checkpoint(durable=False)

    def _close_epoch(self) -> bool:
        """Epoch bookkeeping and the evaluation when due; True if this was the last epoch."""
        loop = self.loop
        loop.epoch += 1
        loop.batch, loop.perm = 0, None
        last = loop.step >= self.run.total_steps
        if loop.epoch % self.t.eval_every == 0 or last:
            self._evaluate()
        return last

    def _checkpoint_due(self, last: bool, since: float) -> bool:
        """Whether the epoch just closed takes a periodic checkpoint (last wrote at `since`)."""
        due = time.monotonic() - since >= self.t.checkpoint_interval_s
        return self.loop.epoch % self.t.checkpoint_every == 0 and due and not last

    def _evaluate(self) -> None:
        loop = self.loop
        self._count_pending_hits()
        loop.elapsed_s = self._elapsed()
        values = collect(self, self.run, loop, self.known_outputs, self.known_scores)
        loop.metrics, loop.evals, loop.last_eval_step = values, loop.evals + 1, loop.step
        self.cb.on_metrics(step=loop.step, epoch=loop.current_epoch, values=dict(values))
        self._track_best(values)
        self._early_stopping(values)
        if self.keep is not None and self.keep.due_after_eval(loop):
            self._keep_due = True
            self._after_evaluation()

    # -- kept checkpoints (forks start from them) ---------------------------------------------
    def _after_evaluation(self) -> None:
        """Write the kept checkpoint now (a pack member's waits for the pack's weights)."""
        self.write_kept()

    def write_kept(self) -> None:
        """The kept checkpoint of the evaluation just taken, if it keeps one."""
        if not self._keep_due or self.keep is None or not self.cb.may_checkpoint():
            return
        self._keep_due = False
        self._count_pending_hits()
        self.loop.elapsed_s = self._elapsed()
        self.keep.keep(self.run, self.loop, after_eval=True)

    def _keep_between_steps(self) -> None:
        if self.keep is None or not self.cb.may_checkpoint():
            return
        self._count_pending_hits()
        self.loop.elapsed_s = self._elapsed()
        self.keep.keep(self.run, self.loop, after_eval=False)

    def _track_best(self, values: dict[str, float]) -> None:
        """Remember the evaluation that is best by the spec's `best_metric`."""
        name, mode, loop = self.t.best_metric, self.t.best_mode, self.loop
        value = values.get(name)
        if value is None or value != value:  # not reported, or NaN
            return
        best = loop.best.get("values", {}).get(name)
        if best is None or (value < best if mode == "min" else value > best):
            loop.best = {
                "metric": name,
                "mode": mode,
                "step": loop.step,
                "epoch": loop.current_epoch,
                "values": dict(values),
            }

    def _early_stopping(self, values: dict[str, float]) -> None:
        rule, early = self.t.early_stopping, self.loop.early
        if rule is None:
            return
        if rule.metric not in values:
            raise TrainingError(
                f"early-stopping metric {rule.metric!r} is not reported; "
                f"reported: {', '.join(sorted(values))}"
            )
        value = values[rule.metric]
        sign = 1.0 if rule.mode == "min" else -1.0
        if early.best is None or sign * (early.best - value) > rule.min_delta:
            early.best, early.bad_evals = value, 0
        else:
            early.bad_evals += 1
            early.stopped = early.bad_evals >= rule.patience

    def _finish(self) -> None:
        loop = self.loop
        if loop.last_eval_step != loop.step:
            self._evaluate()  # max_steps ended mid-epoch: report the partial epoch
        loop.finished = True
        self._checkpoint()

    def _checkpoint(self, *, durable: bool = True) -> None:
        self._commit_checkpoint(self._stage_checkpoint(durable=durable))

    def _stage_checkpoint(self, *, durable: bool = True) -> Path | None:
        """The checkpoint written to a tmp file (None if this run keeps none now)."""
        if self.path is None or not self.cb.may_checkpoint():
            return None
        self._count_pending_hits()
        self.loop.elapsed_s = self._elapsed()
        return ckpt.stage(self.run, self.loop, self.path, durable=durable)

    def _commit_checkpoint(self, staged: Path | None) -> None:
        if staged is None or self.path is None:
            return
        os.replace(staged, self.path)
        self._last_checkpoint = time.monotonic()
        self.cb.on_checkpoint(path=self.path, step=self.loop.step, epoch=self.loop.current_epoch)

    # -- wall clock: progress, stop requests, time limit --------------------------------------
    def _elapsed(self) -> float:
        return self._elapsed0 + (time.monotonic() - self._clock0)

    def _poll(self, *, epoch_end: bool = False) -> None:
        loop, now = self.loop, time.monotonic()
        limit = self.t.time_limit_s
        if limit is not None and self._elapsed0 + (now - self._clock0) > limit:
            raise TimeLimitExceeded(limit_s=limit, step=loop.step, epoch=loop.current_epoch)
        if now >= self._next_progress or epoch_end:
            self._next_progress = now + self.progress_every
            self.cb.on_progress(
                epoch=loop.current_epoch, step=loop.step, total_steps=self.run.total_steps
            )
        if now >= self._next_poll:
            self._next_poll = now + self.poll_every
            reason = self.cb.should_stop()
            if reason is not None:
                self._checkpoint()
                raise Interrupted(reason, step=loop.step, epoch=loop.current_epoch)

    def _result(self) -> TrainResult:
        loop = self.loop
        summary: dict[str, Any] = dict(loop.metrics)
        if loop.early.stopped:
            summary["early_stopped"] = 1.0
        summary["steps"], summary["epochs"] = float(loop.step), float(loop.epoch)
        # The flat values are the last evaluation; `last` says when, `best` is the best one.
        summary["last"] = {"step": loop.last_eval_step, "epoch": loop.epoch}
        if loop.best:
            summary["best"] = dict(loop.best)
        return TrainResult(
            summary=summary,
            steps=loop.step,
            epochs=loop.epoch,
            checkpoint_path=self.path,
            test_hits=self._test_hits(),
        )

    def _test_hits(self) -> torch.Tensor | None:
        """Per test example, a hit or not for the final model: the weights of the last
        evaluation (nothing trains after it), so its mean is the summary's test/acc. From a
        pack's stacked outputs when the pack has them, else one eval pass of its own."""
        run = self.run
        x, y = eval_set(run, "test")
        if not len(x):
            return None
        known = self.known_outputs("test") if self.known_outputs is not None else None
        return example_hits(
            run.forward,
            x,
            y,
            task=run.data.info.task,
            batch_size=self.t.eval_batch_size,
            bf16=run.bf16,
            outputs=known,
        )
