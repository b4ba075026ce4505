"""Models that take any registered activation: MLP, CNN (1-D/2-D), GRU and LSTM."""

from __future__ import annotations

from typing import Any

from torch import nn

from worker.engine.datasets.base import DatasetInfo
from worker.engine.models.activation import make_activation
from worker.engine.models.cnn import CNN, CNNConfig
from worker.engine.models.mlp import MLP, MLPConfig, flat_size
from worker.engine.models.recurrent import RecurrentNet, RNNConfig

__all__ = ["CNN", "MLP", "RecurrentNet", "build_model", "make_activation"]


def build_model(spec: Any, info: DatasetInfo) -> nn.Module:
    """The network of `spec.model` with `spec.activation` for the dataset described by `info`."""
    m = spec.model

    def act(width: int) -> nn.Module:
        return make_activation(spec.activation, width)

    if m.arch == "mlp":
        cfg = MLPConfig(
            flat_size(info.input_shape),
            tuple(m.hidden),
            info.output_dim,
            m.dropout,
            m.batch_norm,
            m.residual,
        )
        return MLP(cfg, act)
    if m.arch == "cnn":
        ccfg = CNNConfig(
            info.input_shape,
            tuple(m.channels),
            info.output_dim,
            m.kernel_size,
            m.stride,
            m.batch_norm,
            m.dropout,
            info.is_sequence,
        )
        return CNN(ccfg, act)
    if m.arch in ("gru", "lstm"):

        def gate(width: int) -> nn.Module:
            return make_activation(m.gate_activation, width)

        rcfg = RNNConfig(info.input_shape, m.hidden_size, m.num_layers, info.output_dim, m.arch)
        return RecurrentNet(rcfg, gate, act)
    raise ValueError(f"unknown model arch {m.arch!r}")
