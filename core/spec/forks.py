"""What a fork may change of its parent's spec, and the fork's spec (docs/forks.md).

A fork continues its parent's weights, optimizer state, data order and random streams from
step k. So it may change what acts on training from k on (the noise schedule, an activation's
parameters, the learning rate and its schedule, weight decay, the length, evaluation and
checkpoint cadences, early stopping, the seed of the noise) and nothing that would change the
model's parameters, the data or the optimizer's state: each such path is a 422 that says why.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from pydantic import ValidationError

from core.spec.experiment import ExperimentSpec
from core.spec.horizon import horizon

# Paths a fork may set (a path, or any path below it).
ALLOWED = (
    "name",
    "tags",
    "priority",
    "seed",
    "noise_schedule",
    "activation",
    "optimizer.lr",
    "optimizer.lr_schedule",
    "optimizer.weight_decay",
    "training.epochs",
    "training.max_steps",
    "training.early_stopping",
    "training.best_metric",
    "training.best_mode",
    "training.time_limit_s",
    "training.eval_every",
    "training.diagnostics_every",
    "training.checkpoint_every",
    "training.checkpoint_interval_s",
    "training.keep_checkpoints",
    "training.eval_batch_size",
    "training.train_eval_size",
    "training.device",
)
# Why the others may not change: by the first part of the path that matches.
WHY = {
    "dataset": "another dataset is other data: a fork continues on its parent's",
    "model": "another model has other parameters: a fork continues its parent's weights",
    "optimizer.name": "another optimizer has another state: a fork continues its parent's",
    "optimizer": "the optimizer's state continues from the parent; of the optimizer, only lr, "
    "lr_schedule and weight_decay may change",
    "training.batch_size": "another batch size is another data order and step count",
    "training": "it changes the data or the model a fork continues",
}


class ForkError(ValueError):
    """An override that cannot be applied: `path` (below `overrides.`) and why."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.message = path, message


def check_path(path: str) -> None:
    """ForkError unless a fork may set `path`."""
    parts = path.split(".")
    if not path or any(not p for p in parts):
        raise ForkError(path, "expected a dotted path into the spec, e.g. noise_schedule.kind")
    if any(path == a or path.startswith(a + ".") for a in ALLOWED):
        return
    for prefix in sorted(WHY, key=len, reverse=True):
        if path == prefix or path.startswith(prefix + "."):
            raise ForkError(path, f"a fork cannot change it: {WHY[prefix]}")
    raise ForkError(path, f"not a field a fork may change; it may change {', '.join(ALLOWED)}")


def apply(parent: Mapping[str, Any], overrides: Mapping[str, Any]) -> ExperimentSpec:
    """The fork's spec: the parent's with each dotted path set, validated as a new spec.

    ForkError names the first path that may not change or fails validation.
    """
    data = copy.deepcopy(dict(parent))
    for path, value in overrides.items():
        check_path(path)
        _set(data, path.split("."), value, path)
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise ForkError(where or "spec", error["msg"].removeprefix("Value error, ")) from None
    _same_parameters(ExperimentSpec.model_validate(dict(parent)), spec, overrides)
    return spec


def check_step(spec: ExperimentSpec, at_step: int) -> None:
    """ForkError if the fork's run would end before the step it starts from."""
    total = horizon(spec).total_steps
    if at_step > total:
        path = "training.max_steps" if spec.training.max_steps else "training.epochs"
        raise ForkError(path, f"the fork's run is {total} steps long; it starts at step {at_step}")


def _set(data: dict[str, Any], keys: list[str], value: Any, path: str) -> None:
    node = data
    for i, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None and keys[: i + 1] in (["activation", "params"], ["noise_schedule"]):
            child = node[key] = {}
        if not isinstance(child, dict):
            at = ".".join(keys[: i + 1])
            raise ForkError(path, f"{at} is not an object in the parent's spec")
        node = child
    node[keys[-1]] = copy.deepcopy(value)


def _same_parameters(parent: ExperimentSpec, fork: ExperimentSpec, paths: Any) -> None:
    """ForkError if the fork's activation has other learned parameters or buffers than the
    parent's (another unit, or a size parameter: the weights could not carry over)."""
    if parent.activation == fork.activation:
        return
    for width in (4, 5):  # two widths: a per-channel parameter differs from a scalar
        before, after = _shapes(parent, width), _shapes(fork, width)
        if before != after:
            path = next((p for p in paths if p.startswith("activation")), "activation")
            raise ForkError(
                path,
                "the unit's learned parameters would change "
                f"({_describe(before)} -> {_describe(after)}): a fork continues its parent's",
            )


def _shapes(spec: ExperimentSpec, width: int) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        unit = spec.activation.build(width)
    state = unit.state_dict()
    return {name: tuple(tensor.shape) for name, tensor in state.items()}


def _describe(shapes: dict[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{n} {list(s)}" for n, s in sorted(shapes.items())) or "none"
