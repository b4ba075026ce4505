"""The scores every evaluation reports, named once: `{split}/{score}`, e.g. `val/acc`.

Every `{split}/{score}` of `SPLITS` is measured alike: in eval mode (noise and dropout
off), on the whole val and test splits and on a fixed subset of the training split
(`training.train_eval_size`). `train_running/{score}` is the other kind: the mean over the
epoch's training minibatches as they were trained, noise on (docs/engine.md, "Metrics").

The engine writes them under these names (worker/engine/metrics.py) and early stopping
chooses among the eval-mode ones (`ScoreMetric`). Other series (`lr`, `noise/scale`, the
diagnostics) are named where they are measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

SPLITS = ("val", "train", "test")  # in the order the early-stopping choices list them
SCORES = ("loss", "acc")
# The running means over the epoch's minibatches in training mode: not comparable with the
# eval-mode scores (for a noisy unit they are measured through the noise).
RUNNING = "train_running"


def metric(split: str, score: str) -> str:
    """The series name of `score` on `split`."""
    return f"{split}/{score}"


SCORE_METRICS = tuple(metric(split, score) for split in SPLITS for score in SCORES)

if TYPE_CHECKING:
    ScoreMetric = str
else:
    ScoreMetric = Literal[SCORE_METRICS]
