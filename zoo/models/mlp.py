"""Fully connected network: Linear -> [BatchNorm] -> activation -> [Dropout] per hidden layer."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from zoo.datasets.base import DatasetInfo

ActFactory = Callable[[int], nn.Module]


@dataclass(frozen=True)
class MLPConfig:
    in_features: int
    hidden: tuple[int, ...]
    out_features: int
    dropout: float = 0.0
    batch_norm: bool = False
    residual: bool = False


class Block(nn.Module):
    """One hidden layer; the activation sits at `<block>.act` so diagnostics name it `<block>`."""

    def __init__(self, n_in: int, n_out: int, act: nn.Module, cfg: MLPConfig) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.norm = nn.BatchNorm1d(n_out) if cfg.batch_norm else nn.Identity()
        self.act = act
        self.drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        # A skip only where shapes agree; other layers stay plain.
        self.residual = cfg.residual and n_in == n_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.drop(self.act(self.norm(self.linear(x))))
        return x + y if self.residual else y


class MLP(nn.Module):
    """Hidden blocks named layer1, layer2, ... and a linear head."""

    def __init__(self, cfg: MLPConfig, make_act: ActFactory) -> None:
        super().__init__()
        self.cfg = cfg
        widths = (cfg.in_features, *cfg.hidden)
        self.blocks = nn.Sequential()
        for i, (n_in, n_out) in enumerate(itertools.pairwise(widths), start=1):
            self.blocks.add_module(f"layer{i}", Block(n_in, n_out, make_act(n_out), cfg))
        self.head = nn.Linear(widths[-1], cfg.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x.flatten(1)))


def flat_size(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def build(spec: Any, info: DatasetInfo, act: ActFactory) -> MLP:
    """The builder of the `mlp` registration (core/spec/models.py)."""
    cfg = MLPConfig(
        flat_size(info.input_shape),
        tuple(spec.hidden),
        info.output_dim,
        spec.dropout,
        spec.batch_norm,
        spec.residual,
    )
    return MLP(cfg, act)
