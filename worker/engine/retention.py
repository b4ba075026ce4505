"""Kept checkpoints: the steps a run can be forked at (`training.keep_checkpoints`).

Beside the one checkpoint a run resumes from (replaced as it goes), a run keeps the full
state at chosen steps, one file each, `step-<k>.pt` in its keep directory: every N-th
evaluation's (`every`), the steps in `at` (mid-epoch ones too) and the best evaluation's
(`best`). A kept checkpoint is taken where a resume checkpoint would be (after the step's
evaluation, or between two steps), so a fork that changes nothing continues exactly as
the run did.

Past `max_kept` periodic files, every other one is dropped and `every` doubles: a run of any
length keeps at most `max_kept` of them, spread over the whole run. The bookkeeping lives in
the loop state (`LoopState.kept`), so a resumed run thins and replaces as the run would have.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from core.artifacts import kept_name
from worker.engine import checkpoint as ckpt
from worker.engine.state import LoopState


class Retention:
    """Which steps a run keeps, and their files in `directory`."""

    def __init__(self, spec: Any, directory: Path) -> None:
        self.spec, self.dir = spec, Path(directory)
        self.at = frozenset(spec.at)

    def path(self, step: int) -> Path:
        return self.dir / kept_name(step)

    def periodic(self, loop: LoopState) -> bool:
        """Whether the evaluation just taken is an `every`-th one."""
        every = loop.kept.get("every") or self.spec.every
        return every > 0 and loop.evals % every == 0

    def due_after_eval(self, loop: LoopState) -> bool:
        """Whether the evaluation just taken (at loop.step) keeps its checkpoint."""
        best = self.spec.best and loop.best.get("step") == loop.step
        return self.periodic(loop) or best or loop.step in self.at

    def due_between_steps(self, step: int) -> bool:
        """Whether the step just taken, not at an epoch end, keeps its checkpoint."""
        return step in self.at

    def keep(self, run: Any, loop: LoopState, *, after_eval: bool) -> Path:
        """Write the checkpoint at loop.step, then drop what the rules no longer keep."""
        kept, periodic = loop.kept, after_eval and self.periodic(loop)
        step, best = loop.step, loop.best.get("step")
        if periodic:
            kept.setdefault("periodic", []).append([loop.evals, step])
        dropped: list[int] = []
        if self.spec.best and best == step:
            previous = kept.get("best")
            if previous is not None and previous != step:
                dropped.append(previous)
            kept["best"] = step
        dropped += self._thin(kept)
        path = self.path(step)
        os.replace(ckpt.stage(run, loop, path, durable=False), path)
        for old in dropped:
            if not self._held(kept, old):
                self.path(old).unlink(missing_ok=True)
        return path

    def _thin(self, kept: dict[str, Any]) -> list[int]:
        """Past max_kept periodic files, every other one goes and `every` doubles."""
        periodic: list[list[int]] = kept.get("periodic", [])
        dropped: list[int] = []
        while len(periodic) > self.spec.max_kept:
            every = 2 * (kept.get("every") or self.spec.every)
            kept["every"] = every
            dropped += [step for evals, step in periodic if evals % every]
            periodic[:] = [[evals, step] for evals, step in periodic if evals % every == 0]
        return dropped

    def _held(self, kept: dict[str, Any], step: int) -> bool:
        """Whether another rule still keeps `step`."""
        periodic = any(s == step for _, s in kept.get("periodic", []))
        return periodic or step in self.at or kept.get("best") == step
