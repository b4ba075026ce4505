"""Convolutional network: conv -> [BN] -> activation -> [Dropout] per layer, global pooling.

1-D convolutions for vectors (mnist1d as [1, 40]) and sequences ([seq, features] read as
[features, seq]); 2-D convolutions for images [C, H, W].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from zoo.datasets.base import DatasetInfo


@dataclass(frozen=True)
class CNNConfig:
    input_shape: tuple[int, ...]
    channels: tuple[int, ...]
    out_features: int
    kernel_size: int = 5
    stride: int = 2
    batch_norm: bool = False
    dropout: float = 0.0
    is_sequence: bool = False


class ConvBlock(nn.Module):
    def __init__(self, conv: nn.Module, norm: nn.Module, act: nn.Module, drop: float) -> None:
        super().__init__()
        self.conv, self.norm, self.act = conv, norm, act
        self.drop = nn.Dropout(drop) if drop > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.act(self.norm(self.conv(x))))


class CNN(nn.Module):
    """Conv blocks named layer1, layer2, ...; mean over positions; linear head."""

    def __init__(self, cfg: CNNConfig, make_act: Callable[[int], nn.Module]) -> None:
        super().__init__()
        self.cfg = cfg
        dims = 2 if len(cfg.input_shape) == 3 else 1
        in_ch = _in_channels(cfg)
        conv = nn.Conv2d if dims == 2 else nn.Conv1d
        norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
        self.blocks = nn.Sequential()
        for i, out_ch in enumerate(cfg.channels, start=1):
            block = ConvBlock(
                conv(in_ch, out_ch, cfg.kernel_size, cfg.stride, padding=cfg.kernel_size // 2),
                norm(out_ch) if cfg.batch_norm else nn.Identity(),
                make_act(out_ch),
                cfg.dropout,
            )
            self.blocks.add_module(f"layer{i}", block)
            in_ch = out_ch
        self.head = nn.Linear(in_ch, cfg.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _to_conv_layout(x, self.cfg)
        h = self.blocks(x)
        return self.head(h.flatten(2).mean(dim=2))


def _in_channels(cfg: CNNConfig) -> int:
    shape = cfg.input_shape
    if len(shape) == 3:
        return shape[0]
    if len(shape) == 2:
        return shape[1] if cfg.is_sequence else shape[0]
    return 1


def _to_conv_layout(x: torch.Tensor, cfg: CNNConfig) -> torch.Tensor:
    if x.dim() == 2:  # a feature vector is a one-channel signal
        return x.unsqueeze(1)
    if x.dim() == 3 and cfg.is_sequence:  # [batch, seq, features] -> [batch, features, seq]
        return x.transpose(1, 2)
    return x


def build(spec: Any, info: DatasetInfo, act: Callable[[int], nn.Module]) -> CNN:
    """The builder of the `cnn` registration (core/spec/models.py)."""
    cfg = CNNConfig(
        info.input_shape,
        tuple(spec.channels),
        info.output_dim,
        spec.kernel_size,
        spec.stride,
        spec.batch_norm,
        spec.dropout,
        info.is_sequence,
    )
    return CNN(cfg, act)
