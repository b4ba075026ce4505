"""Models that take any registered activation: MLP, CNN (1-D/2-D), GRU and LSTM.

Each architecture's registration (core/spec/models.py) names its builder here;
`build_model` calls it through the registration, so plugins' models build the same way.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from zoo.datasets.base import DatasetInfo
from zoo.models.cnn import CNN
from zoo.models.mlp import MLP
from zoo.models.recurrent import RecurrentNet

__all__ = ["CNN", "MLP", "RecurrentNet", "build_model"]


def build_model(spec: Any, info: DatasetInfo) -> nn.Module:
    """The network of `spec.model` with `spec.activation` for the dataset described by `info`."""
    model: nn.Module = spec.model.build(info, spec.activation.build)
    return model
