"""The experiment spec: the pydantic schema that the API validates and the worker trains."""

from core.spec.experiment import (
    ActivationSpec,
    DatasetSpec,
    ExperimentSpec,
    ModelSpec,
    OptimizerSpec,
    ScheduleSpec,
    TrainingSpec,
)

__all__ = [
    "ActivationSpec",
    "DatasetSpec",
    "ExperimentSpec",
    "ModelSpec",
    "OptimizerSpec",
    "ScheduleSpec",
    "TrainingSpec",
]
