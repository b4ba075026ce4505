"""GRU and LSTM from our own cells, so every nonlinearity is a pluggable module.

`gate` replaces the sigmoid gates and `act` the tanh (Gulcehre et al. 2016 put
noisy hard-sigmoid gates and noisy hard-tanh candidates here). The gates of one cell
share a module of width k*hidden (k = 2 for GRU, 3 for LSTM), so per-unit parameters
(e.g. a learned p) get one value per gate unit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from zoo.datasets.base import DatasetInfo

ActFactory = Callable[[int], nn.Module]


@dataclass(frozen=True)
class RNNConfig:
    input_shape: tuple[int, ...]
    hidden_size: int
    num_layers: int
    out_features: int
    cell: str = "gru"  # gru | lstm


class GRUCell(nn.Module):
    def __init__(self, n_in: int, hidden: int, gate: ActFactory, act: ActFactory) -> None:
        super().__init__()
        self.hidden = hidden
        self.x2h = nn.Linear(n_in, 3 * hidden)
        self.h2h = nn.Linear(hidden, 3 * hidden)
        self.gate, self.act = gate(2 * hidden), act(hidden)
        _uniform_init(self, hidden)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        xr, xz, xn = self.x2h(x).chunk(3, dim=1)
        hr, hz, hn = self.h2h(h).chunk(3, dim=1)
        r, z = self.gate(torch.cat([xr + hr, xz + hz], dim=1)).chunk(2, dim=1)
        n = self.act(xn + r * hn)
        return (1 - z) * n + z * h


class LSTMCell(nn.Module):
    def __init__(self, n_in: int, hidden: int, gate: ActFactory, act: ActFactory) -> None:
        super().__init__()
        self.hidden = hidden
        self.x2h = nn.Linear(n_in, 4 * hidden)
        self.h2h = nn.Linear(hidden, 4 * hidden, bias=False)
        self.gate, self.act, self.out = gate(3 * hidden), act(hidden), act(hidden)
        _uniform_init(self, hidden)
        with torch.no_grad():  # forget-gate bias 1: remember by default (Jozefowicz et al. 2015)
            self.x2h.bias[hidden : 2 * hidden].fill_(1.0)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        pre = self.x2h(x) + self.h2h(h)
        gates, cand = pre[:, : 3 * self.hidden], pre[:, 3 * self.hidden :]
        i, f, o = self.gate(gates).chunk(3, dim=1)
        c = f * c + i * self.act(cand)
        return o * self.out(c), c


def _uniform_init(cell: nn.Module, hidden: int) -> None:
    # PyTorch's recurrent initialisation: U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias.
    bound = 1.0 / math.sqrt(hidden)
    for p in _own_linear_params(cell):
        nn.init.uniform_(p, -bound, bound)


def _own_linear_params(cell: nn.Module) -> list[nn.Parameter]:
    return [p for name, p in cell.named_parameters() if name.startswith(("x2h", "h2h"))]


class RecurrentNet(nn.Module):
    """Stacked cells named layer1, layer2, ...; predicts from the last hidden state."""

    def __init__(self, cfg: RNNConfig, gate: ActFactory, act: ActFactory) -> None:
        super().__init__()
        self.cfg = cfg
        cell_cls = GRUCell if cfg.cell == "gru" else LSTMCell
        n_in = _step_features(cfg.input_shape)
        self.cells = nn.ModuleDict()
        for i in range(1, cfg.num_layers + 1):
            self.cells[f"layer{i}"] = cell_cls(n_in, cfg.hidden_size, gate, act)
            n_in = cfg.hidden_size
        self.head = nn.Linear(cfg.hidden_size, cfg.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = _as_sequence(x)
        for cell in self.cells.values():
            seq = self._run(cell, seq)
        return self.head(seq[:, -1])

    def _run(self, cell: nn.Module, seq: torch.Tensor) -> torch.Tensor:
        batch, steps = seq.shape[:2]
        h = seq.new_zeros(batch, self.cfg.hidden_size)
        c = h
        outputs = []
        for t in range(steps):
            if self.cfg.cell == "gru":
                h = cell(seq[:, t], h)
            else:
                h, c = cell(seq[:, t], (h, c))
            outputs.append(h)
        return torch.stack(outputs, dim=1)


def _step_features(shape: tuple[int, ...]) -> int:
    if len(shape) == 1:  # a vector (mnist1d) is read as a sequence of scalars
        return 1
    if len(shape) == 3:  # an image is read row by row: [H, C*W]
        return shape[0] * shape[2]
    return shape[1]


def _as_sequence(x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 2:
        return x.unsqueeze(2)
    if x.dim() == 4:
        b, c, h, w = x.shape
        return x.permute(0, 2, 1, 3).reshape(b, h, c * w)
    return x


def build(spec: Any, info: DatasetInfo, act: ActFactory) -> RecurrentNet:
    """The builder of the `gru` and `lstm` registrations (core/spec/models.py)."""
    cfg = RNNConfig(info.input_shape, spec.hidden_size, spec.num_layers, info.output_dim, spec.arch)
    return RecurrentNet(cfg, spec.gate_activation.build, act)
