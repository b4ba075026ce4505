"""Per-activation-layer diagnostics on one evaluation batch.

Forward hooks are registered only for the diagnostic pass and removed right after, so
the training loop never pays for them. The pass runs in eval mode (the deterministic
output, as sparsity is defined on it) with gradients on, so that the loss gradient
with respect to each activation's output gives `grad/<layer>/norm`; parameter `.grad`
buffers are not touched (torch.autograd.grad on the captured outputs only).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from activations import diagnostics as diag
from activations.base import Activation


@dataclass
class _Capture:
    inputs: list[torch.Tensor] = field(default_factory=list)
    outputs: list[torch.Tensor] = field(default_factory=list)


def layer_name(path: str) -> str:
    """`blocks.layer1.act` -> `layer1`; `cells.layer1.gate` -> `layer1/gate`."""
    parts = [p for p in path.split(".") if p not in ("blocks", "cells")]
    if len(parts) > 1 and parts[-1] == "act":
        parts = parts[:-1]
    return "/".join(parts)


def activation_layers(model: nn.Module) -> dict[str, nn.Module]:
    return {
        layer_name(path): m
        for path, m in model.named_modules()
        if isinstance(m, Activation) and path
    }


def run_diagnostics(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> tuple[dict[str, float], torch.Tensor]:
    """act/<layer>/{sparsity,dead_fraction,saturation,snr} and grad/<layer>/norm, and the
    model's (eval-mode) output on `x`, which the caller reuses instead of a second forward."""
    layers = activation_layers(model)
    captures = {name: _Capture() for name in layers}
    handles = [unit.register_forward_hook(_hook(captures[name])) for name, unit in layers.items()]
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            out = model(x).float()
            loss = loss_fn(out, y)
            outputs = [o for c in captures.values() for o in c.outputs]
            grads = torch.autograd.grad(loss, outputs, allow_unused=True) if outputs else ()
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    values: dict[str, float] = {}
    grad_iter = iter(grads)
    for name, unit in layers.items():
        cap = captures[name]
        layer_grads = [next(grad_iter) for _ in cap.outputs]
        values.update(_layer_values(name, unit, cap, layer_grads))
    return values, out.detach()


def _hook(capture: _Capture) -> Callable[..., None]:
    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        capture.inputs.append(args[0].detach())
        capture.outputs.append(output)

    return hook


def _layer_values(
    name: str, unit: nn.Module, cap: _Capture, grads: Sequence[torch.Tensor | None]
) -> dict[str, float]:
    if not cap.outputs:
        return {}
    # A recurrent cell calls its units once per time step: pool the steps as one batch.
    x = torch.cat(cap.inputs).float()
    y = torch.cat([o.detach() for o in cap.outputs]).float()
    out: dict[str, float] = {}
    if getattr(unit, "is_sparse_family", False):
        out[f"act/{name}/sparsity"] = diag.sparsity(y)
        # Over the pooled batch (and time steps): a unit is dead if it never fires.
        out[f"act/{name}/dead_fraction"] = diag.dead_fraction(y)
    saturation = diag.saturation_fraction(unit, x)
    if saturation is not None:
        out[f"act/{name}/saturation"] = saturation
    snr = diag.snr(unit, x)
    if snr is not None and math.isfinite(snr):
        out[f"act/{name}/snr"] = snr
    norm_sq = sum(float(g.double().square().sum()) for g in grads if g is not None)
    out[f"grad/{name}/norm"] = math.sqrt(norm_sq)
    return out
