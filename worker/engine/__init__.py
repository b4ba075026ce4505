"""actlab's training engine: datasets, models, the trainer and checkpoints.

The engine knows nothing about the database: `train` reports through `Callbacks`.
"""

from worker.engine.callbacks import Callbacks, TrainResult
from worker.engine.checkpoint import CheckpointDiskFull, export_safetensors
from worker.engine.errors import (
    Diverged,
    Interrupted,
    TimeLimitExceeded,
    TrainingError,
)
from worker.engine.trainer import ForkStart, train
from zoo.datasets.errors import DatasetUnavailable

__all__ = [
    "Callbacks",
    "CheckpointDiskFull",
    "DatasetUnavailable",
    "Diverged",
    "ForkStart",
    "Interrupted",
    "TimeLimitExceeded",
    "TrainResult",
    "TrainingError",
    "export_safetensors",
    "train",
]
