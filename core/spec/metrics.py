"""The scores every evaluation reports, named once: `{split}/{score}`, e.g. `val/acc`.

The engine writes them under these names (worker/engine/metrics.py) and early stopping
chooses among them (`ScoreMetric`). Other series (`lr`, `noise/scale`, the diagnostics) are
named where they are measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

SPLITS = ("val", "train", "test")  # in the order the early-stopping choices list them
SCORES = ("loss", "acc")


def metric(split: str, score: str) -> str:
    """The series name of `score` on `split`."""
    return f"{split}/{score}"


SCORE_METRICS = tuple(metric(split, score) for split in SPLITS for score in SCORES)

if TYPE_CHECKING:
    ScoreMetric = str
else:
    ScoreMetric = Literal[SCORE_METRICS]
