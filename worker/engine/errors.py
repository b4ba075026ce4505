"""The engine's one error hierarchy: the worker maps each class to a failure reason."""

from __future__ import annotations


class TrainingError(Exception):
    """Base class of every error the engine raises on purpose."""


class Diverged(TrainingError):
    """The training loss became non-finite (NaN or inf)."""

    def __init__(self, *, step: int, epoch: int, loss: float) -> None:
        super().__init__(f"loss became non-finite ({loss}) at step {step} (epoch {epoch})")
        self.step, self.epoch, self.loss = step, epoch, loss


class TimeLimitExceeded(TrainingError):
    """training.time_limit_s of wall time was used up (counted across resumes)."""

    def __init__(self, *, limit_s: float, step: int, epoch: int) -> None:
        super().__init__(f"time limit of {limit_s:g} s exceeded at step {step} (epoch {epoch})")
        self.limit_s, self.step, self.epoch = limit_s, step, epoch


class Interrupted(TrainingError):
    """Callbacks.should_stop asked to stop; a checkpoint was written first when possible."""

    def __init__(self, reason: str, *, step: int = 0, epoch: int = 0) -> None:
        super().__init__(reason)
        self.reason, self.step, self.epoch = reason, step, epoch
