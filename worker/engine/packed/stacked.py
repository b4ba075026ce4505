"""K member MLPs as one stacked model: weights `[K, out, in]`, one batched matmul per layer.

Chosen over `torch.func.vmap` (see docs/packing.md for the timings): vmap's randomness runs
on the global generator, while each member must draw its noise from its own generator with
the shapes it would draw alone; a batched matmul leaves the activation free to do that.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx

from activations import fused, noise
from activations.deterministic import ReLU
from activations.noisy_relu import NoisyReLU
from zoo.models.mlp import MLP, Block


def _kind(units: list[nn.Module]) -> str:
    """How a layer's activation runs stacked: one op for all members, or member by member."""
    if all(type(u) is ReLU for u in units):
        return "relu"
    if all(type(u) is NoisyReLU and u.raw_sigma is None for u in units):
        return "noisy_relu"
    return "member"


_ALL = slice(None)

# Every member's slice of a parameter starts and ends on a multiple of this many elements
# (64 bytes of float32, the widest vector torch's CPU kernels use), padded with zeros.
ALIGN = 16


class StackedMLP:
    """The members' weights stacked; `forward` takes `[K, B, ...]` inputs.

    Every parameter `[K, ...]` is a view into one flat buffer (and its gradient into one flat
    gradient buffer), so the optimizer updates all members and layers in one fused pass.
    Backward writes each layer's gradients straight into their views (see `_StackedLinear`).

    Each member's slice of each parameter is padded to a multiple of `ALIGN` elements: torch's
    fused optimizer kernels update a tensor's last `numel % 8` elements in a scalar loop that
    rounds otherwise than the vector one. Unpadded, a member's last elements would be updated
    by the vector loop in a large pack and by the scalar one in a pack of one, and a pack
    resumed as smaller packs would leave its uninterrupted curves. Padded, every element of
    every pack is updated by the vector loop (the padding is zero and stays zero).
    """

    def __init__(self, models: list[MLP]) -> None:
        self.models = models
        first = dict(models[0].named_parameters())
        self.names = list(first)
        self.shapes = [tuple(first[n].shape) for n in self.names]
        sizes = [math.prod(shape) for shape in self.shapes]
        self.strides = [-(-size // ALIGN) * ALIGN for size in sizes]  # a member's padded slice
        self.flat = first[self.names[0]].new_zeros(len(models) * sum(self.strides))
        self.grad = torch.zeros_like(self.flat)
        self._build()
        with torch.no_grad():
            for name, view in zip(self.names, self.params, strict=True):
                view.copy_(torch.stack([dict(m.named_parameters())[name] for m in models]))
        blocks: list[list[Block]] = [list(m.blocks.children()) for m in models]  # type: ignore[arg-type]
        self.layers: list[tuple[str, bool, list[nn.Module], str]] = []
        for j, block in enumerate(blocks[0]):
            units = [b[j].act for b in blocks]
            self.layers.append((f"blocks.layer{j + 1}.linear", block.residual, units, _kind(units)))

    @property
    def k(self) -> int:
        return len(self.models)

    def rows(self, flat: Tensor) -> list[Tensor]:
        """`flat` (laid out like the parameters) as one `[K, padded size]` view per parameter."""
        out, start = [], 0
        for stride in self.strides:
            out.append(flat[start : start + self.k * stride].view(self.k, stride))
            start += self.k * stride
        return out

    def split(self, flat: Tensor) -> list[Tensor]:
        """`flat` (laid out like the parameters) as one `[K, ...]` view per parameter."""
        return [
            rows[:, : math.prod(shape)].view(self.k, *shape)
            for rows, shape in zip(self.rows(flat), self.shapes, strict=True)
        ]

    def _build(self) -> None:
        self.params, self.grads = self.split(self.flat), self.split(self.grad)
        self._index = {n: i for i, n in enumerate(self.names)}

    def take(self, flat: Tensor, index: Tensor) -> Tensor:
        """The members at `index` of a flat tensor laid out like the parameters."""
        return torch.cat([t[index].reshape(-1) for t in self.rows(flat)])

    def _linear(self, prefix: str, h: Tensor, members: slice = _ALL) -> Tensor:
        iw, ib = self._index[f"{prefix}.weight"], self._index[f"{prefix}.bias"]
        w, b = self.params[iw][members], self.params[ib][members]
        h = _aligned(h)
        if torch.is_grad_enabled():
            grad_w, grad_b = self.grads[iw][members], self.grads[ib][members]
            return _StackedLinear.apply(h, w, b, grad_w, grad_b, _ANCHOR)
        return torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))

    def forward(self, x: Tensor, members: slice = _ALL) -> Tensor:
        """The outputs of the members in `members` (all by default) on their inputs `x`
        `[len(members), B, ...]`; backward writes only their slices of the gradient, so
        disjoint slices may run forward and backward at once, on different threads."""
        h = x.flatten(2)
        for prefix, residual, units, kind in self.layers:
            y = _activate(self._linear(prefix, h, members), units[members], kind)
            h = h + y if residual else y
        return self._linear("head", h, members)

    def stackable_eval(self) -> bool:
        """Whether `eval_outputs` can run: every layer's units ReLU or NoisyReLU (whose eval
        mode is the ReLU)."""
        return all(kind != "member" for *_, kind in self.layers)

    @torch.inference_mode()
    def eval_outputs(self, x: Tensor, batch_size: int, members: slice = _ALL) -> Tensor:
        """The eval-mode outputs `[len(members), n, out]` of the members in `members` on
        their own `x` `[len(members), n, ...]`, in chunks of `batch_size` rows (only where
        `stackable_eval`)."""
        chunks = []
        for start in range(0, x.shape[1], batch_size):
            h = x[:, start : start + batch_size].flatten(2)
            for prefix, residual, _, _ in self.layers:
                y = torch.relu(self._linear(prefix, h, members))
                h = h + y if residual else y
            chunks.append(self._linear("head", h, members))
        return torch.cat(chunks, dim=1)

    def keep(self, index: Tensor) -> None:
        """Only the members at `index` stay (call the optimizer's `keep` first)."""
        flat, grad = self.take(self.flat.detach(), index), self.take(self.grad, index)
        rows = index.tolist()
        self.models = [self.models[i] for i in rows]
        self.flat, self.grad = flat, grad
        self._build()
        self.layers = [(pre, res, [u[i] for i in rows], kind) for pre, res, u, kind in self.layers]

    @torch.no_grad()
    def store_members(self) -> None:
        """Copy each member's slice back into its own model (for evaluation and checkpoints)."""
        for k, model in enumerate(self.models):
            own = dict(model.named_parameters())
            for name, p in zip(self.names, self.params, strict=True):
                own[name].copy_(p[k])


def _aligned(h: Tensor) -> Tensor:
    """`h` `[K, B, F]`, each member's slice starting on a multiple of `ALIGN` elements.

    MKL's product of a `[B, F]` slice with a narrow weight (10 outputs, say) rounds otherwise
    when the slice does not start on 16 bytes; member k's slice of a contiguous `h` starts at
    `k * B * F` elements, so with `B * F` not a multiple of 4 a member would round otherwise
    in a pack than alone (in a pack of one its slice is the start of an allocation).
    """
    k, rows, features = h.shape
    n = rows * features
    if h.is_contiguous() and n % ALIGN == 0 and h.data_ptr() % (h.element_size() * ALIGN) == 0:
        return h
    padded = h.new_empty(k, -(-n // ALIGN) * ALIGN)[:, :n].view(k, rows, features)
    return padded.copy_(h)


# Requires grad so that every layer's output does (the parameters do not): autograd then
# runs each layer's backward, which writes the parameters' gradients itself.
_ANCHOR = torch.zeros((), requires_grad=True)


class _StackedLinear(torch.autograd.Function):
    """`h @ w^T + b` per member; backward writes the gradients of `w` and `b` into `grad_w`
    and `grad_b` (their views of the flat gradient) and returns only that of `h`.

    Autograd's own baddbmm backward reduces the broadcast bias through expand and adds each
    gradient into a zeroed buffer; here the bias gradient is one sum and both are written,
    with no zeroing or accumulation pass. Each layer runs once a step, so writing (not
    adding) is the whole gradient.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        h: Tensor,
        w: Tensor,
        b: Tensor,
        grad_w: Tensor,
        grad_b: Tensor,
        anchor: Tensor,
    ) -> Tensor:
        ctx.save_for_backward(h, w)
        ctx.grads = (grad_w, grad_b)  # type: ignore[attr-defined]
        return torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, None, None, None, None, None]:
        h, w = ctx.saved_tensors
        grad_w, grad_b = ctx.grads
        # h^T @ g written into grad_w's transposed view, not g^T @ h: that one is as fast,
        # but with one member and two threads MKL splits its 10-row product (the head's)
        # over the batch, the summed axis, so a pack of one would round otherwise than the
        # same member in a larger pack (and a pack resumed as smaller ones would leave its
        # uninterrupted curves: tests/worker/engine/test_engine_packed.py).
        torch.bmm(h.transpose(1, 2), g, out=grad_w.transpose(1, 2))
        torch.sum(g, 1, out=grad_b)
        grad_h = torch.bmm(g, w) if ctx.needs_input_grad[0] else None
        return grad_h, None, None, None, None, None


def _activate(z: Tensor, units: list[nn.Module], kind: str) -> Tensor:
    if kind == "relu":
        return torch.relu(z)
    if kind == "noisy_relu":
        return _noisy_relu(z, units)
    # Any other unit: each member's own module on its slice (its own params and generator).
    return torch.stack([unit(z[k]) for k, unit in enumerate(units)])


def _noisy_relu(z: Tensor, units: list[nn.Module]) -> Tensor:
    """relu(z) + sigma_k * noise_scale_k * eps_k, eps_k drawn exactly as member k alone draws it."""
    noisy = [u for u in units if isinstance(u, NoisyReLU)]
    if any(fused.available(z, u.distribution) for u in noisy):
        # The fused kernel draws its own stream: each member's module keeps it as alone.
        return torch.stack([unit(z[k]) for k, unit in enumerate(units)])
    drawing = [u.noise_on() and u.sigma != 0.0 for u in noisy]
    eps = torch.empty_like(z) if all(drawing) else torch.zeros_like(z)
    jobs = [(eps[k], z[k], u) for k, (u, draws) in enumerate(zip(noisy, drawing, strict=True))]
    jobs = [job for job, draws in zip(jobs, drawing, strict=True) if draws]
    workers = min(torch.get_num_threads(), len(jobs))
    if workers > 1 and z.device.type == "cpu" and z[0].numel() < 2 * noise.CHUNK:
        # Each member's generator is its own, so members draw in parallel (torch releases
        # the GIL); the slices are small enough that `noise.fill` uses no pool of its own.
        parts = [jobs[i::workers] for i in range(workers)]
        others = [noise.executor().submit(_draw_all, part) for part in parts[1:]]
        _draw_all(parts[0])  # this thread draws a share too, rather than wait idle
        for done in others:
            done.result()
    else:
        _draw_all(jobs)
    return eps.add_(torch.relu(z))


def _draw_all(jobs: list[tuple[Tensor, Tensor, NoisyReLU]]) -> None:
    for out, z, unit in jobs:
        level = unit.sigma * unit.noise_scale
        if noise.law(unit.distribution).name == "gaussian":
            # What noise.sample does alone, drawn straight into the member's slice.
            noise.fill(out, partial(_normal, std=level), unit.generator)
        else:
            out.copy_(noise.sample(unit.distribution, z, unit.generator, scale=level))


def _normal(t: Tensor, g: torch.Generator | None, *, std: float) -> Tensor:
    return t.normal_(0.0, std, generator=g)
