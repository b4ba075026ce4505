"""How the trainer reports: a callback object with no-op defaults, and the result it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


class Callbacks:
    """Override what you need; every hook is cheap to call and a no-op by default.

    Hooks run on the training thread, so they should return quickly (queue slow work).
    """

    # should_stop is polled between steps at most this often (0: every step, for tests).
    poll_interval_s: float = 0.5
    # on_progress is called about this often, and at every epoch end.
    progress_interval_s: float = 1.0
    # The run pauses at this step (an adaptive sweep's rung, core/search.py): a checkpoint,
    # then Interrupted("rung"), after the step's evaluation when it ends an epoch.
    pause_at_step: int | None = None

    def on_start(self, *, total_steps: int, total_epochs: int, resumed_from_step: int) -> None:
        """Called once, after data and model are built (and a checkpoint was loaded)."""

    def on_note(self, message: str) -> None:
        """Called after on_start for each thing the run did differently from its spec (a
        setting ignored on this device, an unreadable checkpoint it started over from)."""

    def on_progress(self, *, epoch: int, step: int, total_steps: int) -> None:
        """Called every `progress_interval_s` of wall time and at every epoch end."""

    def on_metrics(self, *, step: int, epoch: int, values: dict[str, float]) -> None:
        """Called once per evaluation with every metric of that evaluation."""

    def on_checkpoint(self, *, path: Path, step: int, epoch: int) -> None:
        """Called after a checkpoint was atomically written to `path`."""

    def may_checkpoint(self) -> bool:
        """False once checkpoints must not be written (e.g. the run's lease was lost)."""
        return True

    def should_stop(self) -> str | None:
        """Polled between steps (at most every `poll_interval_s`); a reason stops the run
        after a checkpoint is written (mid-epoch allowed) by raising Interrupted(reason)."""
        return None


@dataclass
class TrainResult:
    """What a finished run returns: final metrics and where its last checkpoint lies."""

    # Metric name -> its last value, plus `last` and `best` (the best evaluation) as objects.
    summary: dict[str, Any] = field(default_factory=dict)
    steps: int = 0
    epochs: int = 0
    checkpoint_path: Path | None = None
    # Per test example, whether the final model gets it right (its mean is the summary's
    # test/acc): what a bootstrap over test examples resamples. None without a test split.
    test_hits: torch.Tensor | None = None
