"""What a run will hold in memory, derived from the code that builds it.

The dataset's shape, task and size come from its registration, the model is built by its
registration's builder on the `meta` device (no memory, exact parameter shapes), and one batch's
activations are what autograd saves for backward in a meta forward pass: every unit,
the noisy ones' masks and noise included. Nothing here is a second formula of a model.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import torch

from core.spec.horizon import horizon


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


# A recurrent network is measured at these two lengths and extrapolated along its time axis.
_SHORT = 2


def _along(
    measure: Any, model: torch.nn.Module, batch: int, shape: tuple[int, ...], axis: int | None
) -> int:
    """`measure(model, (batch, *shape))`. A network that steps along `axis` saves the same
    tensors at every position, so it is measured at two short lengths and extrapolated:
    exact, and its cost no longer grows with the sequence (a meta pass over 784 positions of
    noisy gates took seconds of the API's CPU per submit)."""
    if axis is None or shape[axis] <= _SHORT + 1:
        return int(measure(model, (batch, *shape)))

    def at(length: int) -> int:
        return int(measure(model, (batch, *shape[:axis], length, *shape[axis + 1 :])))

    first, second = at(_SHORT), at(_SHORT + 1)
    return first + (shape[axis] - _SHORT) * (second - first)


@dataclass(frozen=True)
class Footprint:
    """What a run holds: its parameter count and its memory in bytes, by part."""

    parameters: int
    parts: dict[str, int]

    @property
    def total_bytes(self) -> int:
        return sum(self.parts.values())


def footprint(spec: Any) -> Footprint:
    """Parameters, and bytes by part: data (every split), staging, parameters, gradients,
    optimizer, activations (the larger of one training batch and one evaluation batch)."""
    dataset = spec.dataset
    info = dataset.info()
    n = dataset.sample_count()
    label_bytes = 8 if info.task == "classification" else 4
    data = n * (math.prod(info.input_shape) * 4 + label_bytes)
    t = spec.training
    batch = min(t.batch_size, max(1, dataset.train_size()))
    sizes = _model_sizes(spec, info, batch, min(t.eval_batch_size, n))
    parts = {
        "data": data,
        "data_staging": int(data * dataset.staging_factor),
        "parameters": sizes.parameter_bytes,
        "gradients": sizes.trainable_bytes,
        "optimizer": sizes.trainable_bytes * _optimizer_slots(spec.optimizer),
        "activations": sizes.activation_bytes,
    }
    return Footprint(sizes.trainable, parts)


@dataclass(frozen=True)
class _ModelSizes:
    trainable: int  # trainable parameters
    parameter_bytes: int
    trainable_bytes: int
    activation_bytes: int  # the larger of one training and one evaluation batch


def _model_sizes(spec: Any, info: Any, batch: int, eval_batch: int) -> _ModelSizes:
    # A model's sizes depend on the dataset's shape, the model and the activation (with its
    # parameters) and the batch sizes alone, so the members of a sweep that differ in seed,
    # noise schedule or optimizer share one meta pass; so do the API's preview and submit of
    # one spec. The meta pass of a recurrent net with noisy hard units takes tens of
    # milliseconds (torch's Python meta kernels); it was half the API's CPU under the
    # schemathesis run. The cache's key is the model's and the activation's JSON (the specs
    # themselves are not hashable).
    return _sizes(
        info,
        spec.model.__class__,
        spec.model.model_dump_json(),
        spec.activation.__class__,
        spec.activation.model_dump_json(),
        batch,
        eval_batch,
        torch.get_default_dtype(),  # part of the key: parameters are built in it
    )


@functools.lru_cache(maxsize=1024)
def _sizes(
    info: Any,
    model_type: Any,
    model_json: str,
    activation_type: Any,
    activation_json: str,
    batch: int,
    eval_batch: int,
    dtype: torch.dtype,
) -> _ModelSizes:
    model_spec = model_type.model_validate_json(model_json)
    activation = activation_type.model_validate_json(activation_json)
    with torch.device("meta"):
        model = model_spec.build(info, activation.build)
    trainable = [p for p in model.parameters() if p.requires_grad]
    axis = model_spec.time_axis(info.input_shape)
    return _ModelSizes(
        trainable=sum(p.numel() for p in trainable),
        parameter_bytes=sum(p.numel() * p.element_size() for p in model.parameters()),
        trainable_bytes=sum(p.numel() * p.element_size() for p in trainable),
        activation_bytes=max(
            _along(_saved_bytes, model, batch, info.input_shape, axis),
            _along(_eval_bytes, model, eval_batch, info.input_shape, axis),
        ),
    )


# A checkpoint file beside its tensors: the spec, every RNG state, the loop's bookkeeping
# and torch's zip framing (measured: 37 KB for the canonical spec; 64 KiB is a safe bound).
CHECKPOINT_OVERHEAD_BYTES = 64 * 2**10


def kept_checkpoints(spec: Any, size: Footprint) -> tuple[int, int]:
    """How many checkpoints a run keeps at most (training.keep_checkpoints) and their bytes
    on disk: each holds the parameters and the optimizer's state."""
    keep, h = spec.training.keep_checkpoints, horizon(spec)
    evals = math.ceil(h.total_epochs / spec.training.eval_every)  # and always the last
    periodic = 0 if keep.every == 0 else min(math.ceil(evals / keep.every), keep.max_kept)
    files = periodic + len(keep.at) + int(keep.best)
    each = size.parts["parameters"] + size.parts["optimizer"] + CHECKPOINT_OVERHEAD_BYTES
    return files, files * each


def estimate(spec: Any) -> dict[str, int]:
    """Bytes by part (see `footprint`)."""
    return footprint(spec).parts
