"""K member MLPs as one stacked model: weights `[K, out, in]`, one batched matmul per layer.

Chosen over `torch.func.vmap` (see docs/packing.md for the timings): vmap's randomness runs
on the global generator, while each member must draw its noise from its own generator with
the shapes it would draw alone; a batched matmul leaves the activation free to do that.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from activations import fused, noise
from activations.deterministic import ReLU
from activations.noisy_relu import NoisyReLU
from worker.engine.models.mlp import MLP, Block


def _kind(units: list[nn.Module]) -> str:
    """How a layer's activation runs stacked: one op for all members, or member by member."""
    if all(type(u) is ReLU for u in units):
        return "relu"
    if all(type(u) is NoisyReLU and u.raw_sigma is None for u in units):
        return "noisy_relu"
    return "member"


class StackedMLP:
    """The members' weights stacked; `forward` takes `[K, B, ...]` inputs."""

    def __init__(self, models: list[MLP]) -> None:
        self.models = models
        self.names = [name for name, _ in models[0].named_parameters()]
        self.params = [
            torch.stack([dict(m.named_parameters())[n].detach() for m in models]).requires_grad_()
            for n in self.names
        ]
        self._index = {n: i for i, n in enumerate(self.names)}
        blocks: list[list[Block]] = [list(m.blocks.children()) for m in models]  # type: ignore[arg-type]
        self.layers: list[tuple[str, bool, list[nn.Module], str]] = []
        for j, block in enumerate(blocks[0]):
            units = [b[j].act for b in blocks]
            self.layers.append((f"blocks.layer{j + 1}.linear", block.residual, units, _kind(units)))

    def _linear(self, prefix: str, h: Tensor) -> Tensor:
        w, b = (
            self.params[self._index[f"{prefix}.weight"]],
            self.params[self._index[f"{prefix}.bias"]],
        )
        return torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))

    def forward(self, x: Tensor) -> Tensor:
        h = x.flatten(2)
        for prefix, residual, units, kind in self.layers:
            y = _activate(self._linear(prefix, h), units, kind)
            h = h + y if residual else y
        return self._linear("head", h)

    def keep(self, index: Tensor) -> None:
        """Only the members at `index` stay (new leaf tensors; grads follow)."""
        rows = index.tolist()
        self.models = [self.models[i] for i in rows]
        kept = []
        for p in self.params:
            q = p.detach()[index].requires_grad_()
            if p.grad is not None:
                q.grad = p.grad[index]
            kept.append(q)
        self.params = kept
        self.layers = [(pre, res, [u[i] for i in rows], kind) for pre, res, u, kind in self.layers]

    @torch.no_grad()
    def store_members(self) -> None:
        """Copy each member's slice back into its own model (for evaluation and checkpoints)."""
        for k, model in enumerate(self.models):
            own = dict(model.named_parameters())
            for name, p in zip(self.names, self.params, strict=True):
                own[name].copy_(p[k])


def _activate(z: Tensor, units: list[nn.Module], kind: str) -> Tensor:
    if kind == "relu":
        return torch.relu(z)
    if kind == "noisy_relu":
        return _noisy_relu(z, units)
    # Any other unit: each member's own module on its slice (its own params and generator).
    return torch.stack([unit(z[k]) for k, unit in enumerate(units)])


def _noisy_relu(z: Tensor, units: list[nn.Module]) -> Tensor:
    """relu(z) + sigma_k * noise_scale_k * eps_k, eps_k drawn exactly as member k alone draws it."""
    if any(fused.available(z, u.distribution) for u in units if isinstance(u, NoisyReLU)):
        # The fused kernel draws its own stream: each member's module keeps it as alone.
        return torch.stack([unit(z[k]) for k, unit in enumerate(units)])
    draws = []
    for k, unit in enumerate(units):
        assert isinstance(unit, NoisyReLU)
        if unit.noise_on() and unit.sigma != 0.0:
            level = unit.sigma * unit.noise_scale
            draws.append(noise.sample(unit.distribution, z[k], unit.generator, scale=level))
        else:
            draws.append(torch.zeros_like(z[k]))
    return torch.relu(z) + torch.stack(draws)
