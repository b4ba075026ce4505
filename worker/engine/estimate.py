"""What a run will hold in memory, derived from the code that builds it.

The dataset's shape and task come from the registry (`info_for`), the model is built by
`build_model` on the `meta` device (no memory, exact parameter shapes), and one batch's
activations are what autograd saves for backward in a meta forward pass: every unit,
the noisy ones' masks and noise included. Nothing here is a second formula of a model.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from worker.engine.datasets import info_for
from worker.engine.models import build_model

# While the splits are made, the loader's arrays and the float64 statistics copy of the
# training split live beside the final float32 tensors: about twice their size again.
# MNIST-1D's generator keeps several float64 copies of every example while it builds them.
STAGING_FACTOR = 2.0
STAGING_FACTORS = {"mnist1d": 4.0}


def sample_count(dataset: Any) -> int:
    """Examples over every split (train, validation and test together)."""
    return sum(dataset.split_sizes())


def _optimizer_slots(optimizer: Any) -> int:
    """Tensors of state per parameter: Adam's two moments, SGD's momentum buffer."""
    if optimizer.name in ("adam", "adamw"):
        return 2
    return 1 if optimizer.momentum else 0


def _saved_bytes(model: torch.nn.Module, shape: tuple[int, ...]) -> int:
    """Bytes autograd saves for backward in one training forward pass of `shape`."""
    saved = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += tensor.numel() * tensor.element_size()
        return tensor

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(torch.empty(shape, device="meta"))
    return saved + out.numel() * out.element_size() * 2  # the output and its gradient


def _eval_bytes(model: torch.nn.Module, shape: tuple[int, ...]) -> int:
    """The two largest layer outputs alive at once in an evaluation pass of `shape`."""
    sizes: list[int] = []

    def record(_module: Any, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            sizes.append(output.numel() * output.element_size())

    hooks = [m.register_forward_hook(record) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.empty(shape, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    return sum(sorted(sizes)[-2:])


def estimate(spec: Any) -> dict[str, int]:
    """Bytes by part: data (every split), staging, parameters, gradients, optimizer,
    activations (the larger of one training batch and one evaluation batch)."""
    info = info_for(spec.dataset)
    n = sample_count(spec.dataset)
    label_bytes = 8 if info.task == "classification" else 4
    data = n * (math.prod(info.input_shape) * 4 + label_bytes)
    with torch.device("meta"):
        model = build_model(spec, info)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    t = spec.training
    batch = min(t.batch_size, max(1, spec.dataset.train_size()))
    activations = max(
        _saved_bytes(model, (batch, *info.input_shape)),
        _eval_bytes(model, (min(t.eval_batch_size, n), *info.input_shape)),
    )
    return {
        "data": data,
        "data_staging": int(data * STAGING_FACTORS.get(info.name, STAGING_FACTOR)),
        "parameters": params,
        "gradients": trainable,
        "optimizer": trainable * _optimizer_slots(spec.optimizer),
        "activations": activations,
    }
