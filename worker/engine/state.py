"""The training loop's position: everything besides model and optimizer that resume needs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch


@dataclass
class EarlyStopState:
    best: float | None = None
    bad_evals: int = 0
    stopped: bool = False


@dataclass
class LoopState:
    """Where the loop is. `epoch` counts completed epochs; `batch` indexes the current one."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    # The current epoch's data order (None between epochs: the next is drawn at epoch start).
    perm: torch.Tensor | None = None
    # Running train-metric sums over the current epoch (reset when an epoch starts).
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    evals: int = 0
    elapsed_s: float = 0.0
    finished: bool = False
    last_eval_step: int = -1
    noise_scale: float = 1.0
    lr: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    early: EarlyStopState = field(default_factory=EarlyStopState)
    # The best evaluation by the spec's best_metric: {metric, mode, step, epoch, values}.
    best: dict[str, Any] = field(default_factory=dict)
    # Kept checkpoints' bookkeeping (worker/engine/retention.py): the periodic ones as
    # [evaluation, step] pairs, the best one's step, and `every` once thinning doubled it.
    kept: dict[str, Any] = field(default_factory=dict)

    def state_dict(self) -> dict[str, Any]:
        state = asdict(self)
        state["perm"] = None if self.perm is None else self.perm.detach().cpu().clone()
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> LoopState:
        state = dict(state)
        early = EarlyStopState(**state.pop("early"))
        return cls(**state, early=early)

    @property
    def current_epoch(self) -> int:
        """1-based epoch a step in progress belongs to (the callbacks' `epoch`)."""
        return self.epoch + 1 if self.batch > 0 else max(self.epoch, 1)
