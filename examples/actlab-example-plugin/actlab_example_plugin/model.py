"""resmlp: a residual MLP, registered like a built-in model architecture."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from core.spec.base import Model
from zoo.datasets.base import DatasetInfo


class _Block(nn.Module):
    """x + W2 act(W1 LayerNorm(x)); the activation sits at `<block>.act`, which is the name
    actlab's diagnostics report it under."""

    def __init__(self, width: int, act: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.linear1 = nn.Linear(width, width)
        self.act = act
        self.linear2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.linear2(self.act(self.linear1(self.norm(x))))


class _ResidualMLP(nn.Module):
    def __init__(
        self, n_in: int, width: int, depth: int, n_out: int, act: Callable[[int], nn.Module]
    ) -> None:
        super().__init__()
        self.stem = nn.Linear(n_in, width)
        self.blocks = nn.Sequential()
        for i in range(1, depth + 1):
            self.blocks.add_module(f"block{i}", _Block(width, act(width)))
        self.head = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x.flatten(1))))


class ResMLP(Model):
    """Residual MLP: a linear stem to `width`, `depth` pre-norm residual blocks
    x + W2 act(W1 LayerNorm(x)), and a linear head."""

    arch: Literal["resmlp"]
    width: int = Field(64, ge=1, le=4096, description="Width of every block.")
    depth: int = Field(2, ge=1, le=32, description="Number of residual blocks.")

    def build(self, info: DatasetInfo, act: Callable[[int], nn.Module]) -> nn.Module:
        # Called by the worker's engine, and by the API on the meta device for the size
        # limit and the memory estimate: the same network both times.
        n_in = math.prod(info.input_shape)
        return _ResidualMLP(n_in, self.width, self.depth, info.output_dim, act)
