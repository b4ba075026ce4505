"""The packed loop: K members step together as one stacked model, each with its own data
order, noise, schedules, evaluation and checkpoints, and each may leave the pack alone
(cancelled, diverged, early-stopped, lease lost) while the others go on."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from worker.engine.errors import Diverged, Interrupted
from worker.engine.evaluation import member_hits, member_scores
from worker.engine.metrics import eval_set
from worker.engine.packed.member import MemberTrainer, Outcome
from worker.engine.packed.optim import StackedOptimizer
from worker.engine.packed.shards import Shards
from worker.engine.packed.stacked import StackedMLP

OnLeave = Callable[[int, Outcome], None]  # (member index, outcome), as each member leaves


class PackedTrainer:
    """Trains members that share one loop position (step, epoch, batch) to their ends."""

    def __init__(self, members: list[MemberTrainer], on_leave: OnLeave | None = None) -> None:
        self.members, self.on_leave = members, on_leave
        self.slot = list(range(len(members)))  # each active member's index in the caller's list
        self.outcomes: dict[int, Outcome] = {}
        first = members[0]
        self.task, self.t = first.run.data.info.task, first.t
        self.model = StackedMLP([m.run.model for m in members])  # type: ignore[misc]
        specs = [m.run.spec for m in members]
        self.opt = StackedOptimizer(self.model, specs)
        self.opt.load_members([m.run.optimizer for m in members])
        self.x = torch.stack([m.run.data.tensors["train"][0] for m in members])
        self.y = torch.stack([m.run.data.tensors["train"][1] for m in members])
        self._set_offsets()
        self._pending: list[tuple[Tensor, Tensor]] = []
        self.perm: Tensor | None = None
        self.poll_every = min(float(m.cb.poll_interval_s) for m in members)
        self.progress_every = min(float(m.cb.progress_interval_s) for m in members)
        self._next_poll = self._next_progress = 0.0
        self._last_checkpoint = time.monotonic()
        self.shards = Shards(self.x.device)

    def fit(self) -> dict[int, Outcome]:
        """Every member's outcome, keyed by its index in the list given to the constructor."""
        self.shards.start()
        try:
            for m in self.members:
                m.start()
            self._pause_at_rungs()  # resumed at their rung already (retried paused members)
            while self.members:
                if self.members[0].done:
                    self._finish(list(self.members))
                    break
                self._train_epoch()
        finally:
            self.shards.close()
        return self.outcomes

    # -- steps ----------------------------------------------------------------------------
    def _train_epoch(self) -> None:
        for m in self.members:
            m.begin_epoch()
        # Every member's data order of this epoch, one row each (drawn by its own generator).
        self.perm = torch.stack([m.loop.perm for m in self.members])  # type: ignore[misc]
        while self.members:
            lead, run = self.members[0].loop, self.members[0].run
            if lead.batch >= run.steps_per_epoch or lead.step >= run.total_steps:
                return
            for m in self.members:
                m.before_step()
            bs, spe = self.t.batch_size, run.steps_per_epoch
            start = lead.batch * bs
            end = run.data.n_train if lead.batch == spe - 1 else start + bs
            self._step(self.perm[:, start:end])
            for m in self.members:
                m.loop.batch += 1
                m.loop.step += 1
            if self.members and self.members[0].loop.batch == spe:
                self._end_epoch()
                self._poll(epoch_end=True)
                self._pause_at_rungs()
                return
            keeping = [m for m in self.members if m.keeps_between_steps()]
            if keeping:
                self._store_members()
                for m in keeping:
                    m.keep_between_steps()
            self._poll()
            self._pause_at_rungs()

    def _step(self, idx: Tensor) -> None:
        # Every member's batch in one gather: member k's rows start at k * n in the flat view.
        rows = (idx + self.offsets).view(-1)
        shape, features = idx.shape, self.x.shape[2:]
        xb = self.x.view(-1, *features).index_select(0, rows).view(*shape, *features)
        yb = self.y.view(-1).index_select(0, rows).view(shape)
        update = self.opt.begin([m.loop.lr for m in self.members])
        parts = self.shards.map(partial(self._shard_step, xb, yb, update), len(self.members))
        out = parts[0][0] if len(parts) == 1 else torch.cat([o for o, _ in parts])
        values = [v for _, shard in parts for v in shard]
        good = [k for k, v in enumerate(values) if math.isfinite(v)]
        if len(good) < len(values):
            self._diverged(values, good)
            if not good:
                return
            keep = torch.tensor(good, device=idx.device)
            out, yb, values = out[keep], yb[keep], [values[k] for k in good]
        n = yb.shape[1]
        for m, value in zip(self.members, values, strict=True):
            m.loop.loss_sum += value * n
            m.loop.seen += n
        self._pending.append((self.members[0].predict(out), yb))

    def _shard_step(
        self, xb: Tensor, yb: Tensor, update: Callable[[Iterable[int]], None], members: slice
    ) -> tuple[Tensor, list[float]]:
        """(outputs, batch losses) of the members in `members`, each of them stepped by its
        optimizer right after its backward (on this shard's thread); a member whose loss is
        not finite takes no part in backward and is not updated (it leaves the pack)."""
        out = self.model.forward(xb[members], members)
        losses = self._losses(out, yb[members])
        values = losses.tolist()  # one host sync a step, as alone: divergence is caught at once
        good = [k for k, v in enumerate(values) if math.isfinite(v)]
        if good:
            (losses.sum() if len(good) == len(values) else losses[good].sum()).backward()
            ids = range(len(self.members))[members]
            update(ids[k] for k in good)
        return out.detach(), values

    def _losses(self, out: Tensor, yb: Tensor) -> Tensor:
        """Each member's mean batch loss, `[K]`."""
        if self.task == "regression":
            return (out.squeeze(-1) - yb).pow(2).mean(dim=1)
        # Classes on dim 1 ([K, C, B]): the batch is the inner dimension, which torch's
        # log-softmax vectorises over (3x faster than over [K * B, C] rows of 10 classes).
        return F.cross_entropy(out.transpose(1, 2), yb, reduction="none").mean(1)

    def _diverged(self, values: list[float], good: list[int]) -> None:
        bad = [(self.members[k], v) for k, v in enumerate(values) if k not in good]
        self._leave(
            [(m, Diverged(step=m.loop.step + 1, epoch=m.loop.epoch + 1, loss=v)) for m, v in bad]
        )

    # -- epoch ends, checkpoints, members leaving -----------------------------------------
    def _end_epoch(self) -> None:
        self._flush_pending()
        self.model.store_members()
        with self._shared_evaluation():
            last = all([m.end_epoch() for m in self.members])  # every member closes its epoch
        keeping = [m for m in self.members if m.keep_due()]
        if keeping:  # the kept checkpoints of this evaluation (forks start there)
            self._store_members()
            for m in keeping:
                m.write_kept()
        stopped = [m for m in self.members if m.loop.early.stopped]
        going = [m for m in self.members if not m.loop.early.stopped]
        if going and self.members[0].checkpoint_due(last, self._last_checkpoint):
            self._checkpoint(going, durable=False)
        if stopped:
            self._finish(stopped)

    def _checkpoint(self, members: list[MemberTrainer], *, durable: bool = True) -> None:
        """Every given member's own checkpoint, all at the same step: all are written, then
        all committed, so that a kill leaves the members at one step (but for the moment
        of the renames), and the pack resumes whole."""
        self._store_members()
        staged: list[Path | None] = []
        try:
            for m in members:
                staged.append(m.stage_checkpoint(durable=durable))
        except BaseException:
            for path in staged:
                if path is not None:
                    path.unlink(missing_ok=True)
            raise
        for m, path in zip(members, staged, strict=True):
            m.commit_checkpoint(path)
        self._last_checkpoint = time.monotonic()

    def _pause_at_rungs(self) -> None:
        """Members at their callbacks' `pause_at_step` (an adaptive sweep's rung, unless the
        run ends there) checkpoint and leave with Interrupted("rung"), as `Trainer` does
        alone; each resumes from its own checkpoint when promoted, alone or packed anew."""
        due = [
            m
            for m in self.members
            if m.cb.pause_at_step is not None and m.loop.step >= m.cb.pause_at_step and not m.done
        ]
        if due:
            self._checkpoint(due)
            self._leave(
                (m, Interrupted("rung", step=m.loop.step, epoch=m.loop.current_epoch)) for m in due
            )

    def _finish(self, members: list[MemberTrainer]) -> None:
        self._store_members()
        with self._shared_evaluation():
            self._leave((m, m.finish()) for m in members)  # each reported as it ends

    @contextmanager
    def _shared_evaluation(self) -> Iterator[None]:
        """Inside, a member's evaluation takes its outputs on each split's `eval_set` (train,
        val, test), and their loss and accuracy, from one stacked pass over every member
        (computed on the first member's request), not from its own."""
        cache: dict[str, Tensor | None] = {}
        scored: dict[str, list[tuple[float, float]] | None] = {}

        def stacked(split: str) -> Tensor | None:
            if split not in cache:
                cache[split] = None
                if self.model.stackable_eval():
                    x = torch.stack([eval_set(m.run, split)[0] for m in members])
                    run = partial(self._eval_shard, x, self.t.eval_batch_size)
                    parts = self.shards.map(run, len(members))
                    cache[split] = parts[0] if len(parts) == 1 else torch.cat(parts)
            return cache[split]

        def outputs(split: str, k: int) -> Tensor | None:
            out = stacked(split)
            return None if out is None else out[k]

        def scores(split: str, k: int) -> tuple[float, float] | None:
            if split not in scored:
                out, bs = stacked(split), self.t.eval_batch_size
                y = torch.stack([eval_set(m.run, split)[1] for m in members])
                scored[split] = (
                    None if out is None else member_scores(self.task, out, y, batch_size=bs)
                )
            given = scored[split]
            return None if given is None else given[k]

        members = list(self.members)
        for k, m in enumerate(members):
            m.known_outputs, m.known_scores = partial(outputs, k=k), partial(scores, k=k)
        try:
            yield
        finally:
            for m in members:
                m.known_outputs = m.known_scores = None

    def _eval_shard(self, x: Tensor, batch_size: int, members: slice) -> Tensor:
        return self.model.eval_outputs(x[members], batch_size, members)

    def _store_members(self) -> None:
        self._flush_pending()
        self.model.store_members()
        self.opt.store_members([m.run.optimizer for m in self.members])

    def _flush_pending(self) -> None:
        """Count every member's train hits of the steps not yet counted, in one pass."""
        if not self._pending:
            return
        preds = torch.cat([p for p, _ in self._pending], dim=1)
        targets = torch.cat([y for _, y in self._pending], dim=1)
        for m, hits in zip(self.members, member_hits(self.task, preds, targets), strict=True):
            m.loop.correct += hits
        self._pending.clear()

    def _leave(self, outcomes: Iterable[tuple[MemberTrainer, Outcome]]) -> None:
        """Each given member leaves with its outcome, reported the moment it is drawn from
        `outcomes` (which may compute it lazily); the others go on."""
        self._flush_pending()
        gone = set()
        for member, outcome in outcomes:
            k = self.members.index(member)
            self.outcomes[self.slot[k]] = outcome
            if self.on_leave is not None:
                self.on_leave(self.slot[k], outcome)
            gone.add(id(member))
        rest = [i for i, m in enumerate(self.members) if id(m) not in gone]
        self.members = [self.members[i] for i in rest]
        self.slot = [self.slot[i] for i in rest]
        if not rest:
            return
        index = torch.tensor(rest, dtype=torch.long, device=self.x.device)
        self.opt.keep(index)
        self.model.keep(index)
        self.x, self.y = self.x[index], self.y[index]
        if self.perm is not None:
            self.perm = self.perm[index]
        self._set_offsets()

    def _set_offsets(self) -> None:
        k, n = self.x.shape[:2]
        self.offsets = torch.arange(0, k * n, n, device=self.x.device).unsqueeze(1)

    # -- wall clock: progress and stop requests -------------------------------------------
    def _poll(self, *, epoch_end: bool = False) -> None:
        now = time.monotonic()
        if now >= self._next_progress or epoch_end:
            self._next_progress = now + self.progress_every
            for m in self.members:
                total = m.run.total_steps
                m.cb.on_progress(epoch=m.loop.current_epoch, step=m.loop.step, total_steps=total)
        if now < self._next_poll:
            return
        self._next_poll = now + self.poll_every
        reasons = [(m, m.cb.should_stop()) for m in self.members]
        stops = [(m, r) for m, r in reasons if r is not None]
        # A shutdown or a preemption stops the whole pack at one step (it resumes whole).
        whole = next((r for _, r in stops if r in ("shutdown", "preempt")), None)
        if whole is not None:
            stops = [(m, r or whole) for m, r in reasons]
        if stops:
            self._checkpoint([m for m, _ in stops])
            self._leave(
                (m, Interrupted(r, step=m.loop.step, epoch=m.loop.current_epoch)) for m, r in stops
            )
