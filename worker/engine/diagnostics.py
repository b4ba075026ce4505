"""Per-activation-layer diagnostics over a whole evaluation split, batch by batch.

Forward hooks are registered only for the diagnostic pass and removed right after, so
the training loop never pays for them. The pass runs in eval mode (the deterministic
output, as sparsity is defined on it) with gradients on, so that the gradient of the
split's mean loss with respect to each activation's output gives `grad/<layer>/norm`;
parameter `.grad` buffers are not touched (torch.autograd.grad on the captured outputs).
Every statistic is accumulated over all batches: a unit (a channel of a conv output) is
dead only if it is zero for every example and position of the split, not merely for one
batch. Each metric's formula: docs/activations.md, "Diagnostics: definitions".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from activations import diagnostics as diag
from activations.base import Activation, NoisyActivation


@dataclass
class _Capture:
    inputs: list[torch.Tensor] = field(default_factory=list)
    outputs: list[torch.Tensor] = field(default_factory=list)


# Var(signal) / Var(noise) above this (noise std under 0.1% of the signal's) is not reported.
SNR_MAX = 1e6


@dataclass
class _LayerStats:
    """Running sums for one activation layer across the batches of a split."""

    zeros: int = 0
    elements: int = 0
    alive: torch.Tensor | None = None  # per unit (channel): non-zero somewhere so far
    alive_positions: torch.Tensor | None = None  # per (channel, position), conv outputs only
    saturated: int = 0
    signal_sum: float = 0.0
    signal_sq: float = 0.0
    noise_var_sum: float = 0.0
    # Per unit (channel), for snr_unit_median: the sums of signal, signal² and noise
    # variance over each unit's samples (examples x positions), and how many samples.
    unit_sums: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    unit_samples: int = 0
    # The output-side noise (output_noise_var), for snr_output and its per-unit median:
    # its sum over every element and, per unit, over each unit's samples.
    out_noise_var_sum: float = 0.0
    unit_out_noise: torch.Tensor | None = None
    grad_sq: float = 0.0
    seen: int = 0  # pre-activation elements
    has_saturation: bool = False
    has_snr: bool = False
    has_snr_output: bool = False


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
    batch_size: int | None = None,
) -> tuple[dict[str, float], torch.Tensor]:
    """act/<layer>/{sparsity,dead_fraction,dead_position_fraction,saturation,snr,
    snr_unit_median,snr_output,snr_output_unit_median} and grad/<layer>/norm over all of
    (x, y) in batches of `batch_size` (default: one batch), and the model's eval-mode output
    on `x`, which the caller reuses instead of a second forward pass."""
    layers = activation_layers(model)
    stats = {name: _LayerStats() for name in layers}
    captures = {name: _Capture() for name in layers}
    handles = [unit.register_forward_hook(_hook(captures[name])) for name, unit in layers.items()]
    was_training = model.training
    model.eval()
    n, size = len(x), batch_size or max(len(x), 1)
    outs: list[torch.Tensor] = []
    try:
        for start in range(0, n, size):
            xb, yb = x[start : start + size], y[start : start + size]
            with torch.enable_grad():
                out = model(xb).float()
                # Weighted by the batch's share: the gradients are those of the split's mean.
                loss = loss_fn(out, yb) * (len(xb) / n)
                outputs = [o for c in captures.values() for o in c.outputs]
                grads = torch.autograd.grad(loss, outputs, allow_unused=True) if outputs else ()
            grad_iter = iter(grads)
            for name, unit in layers.items():
                cap = captures[name]
                _accumulate(stats[name], unit, cap, [next(grad_iter) for _ in cap.outputs])
                cap.inputs.clear()
                cap.outputs.clear()
            outs.append(out.detach())
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    values: dict[str, float] = {}
    for name in layers:
        values.update(_layer_values(name, stats[name]))
    return values, torch.cat(outs) if outs else torch.empty(0)


def _hook(capture: _Capture) -> Callable[..., None]:
    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        capture.inputs.append(args[0].detach())
        capture.outputs.append(output)

    return hook


def _accumulate(
    st: _LayerStats, unit: nn.Module, cap: _Capture, grads: Sequence[torch.Tensor | None]
) -> None:
    if not cap.outputs:
        return
    # A recurrent cell calls its units once per time step: pool the steps as one batch.
    x = torch.cat(cap.inputs).float()
    y = torch.cat([o.detach() for o in cap.outputs]).float()
    if getattr(unit, "is_sparse_family", False) and y.dim() >= 2:
        st.zeros += int((y == 0).sum())
        st.elements += y.numel()
        st.alive = _union(st.alive, (diag.units(y) != 0).any(dim=0))
        if y.dim() > 2:
            st.alive_positions = _union(st.alive_positions, (y != 0).any(dim=0))
    mask = unit.saturation_mask(x) if isinstance(unit, Activation) else None
    if mask is not None:
        st.has_saturation = True
        st.saturated += int(mask.sum())
    if isinstance(unit, NoisyActivation):
        st.has_snr = True
        signal, noise_var = diag.signal_and_noise(unit, x)
        st.signal_sum += float(signal.double().sum())
        st.signal_sq += float(signal.double().square().sum())
        st.noise_var_sum += float(noise_var.double().sum())
        if signal.dim() >= 2:
            _accumulate_units(st, diag.units(signal).double(), diag.units(noise_var).double())
        out_var = diag.output_noise_var(unit, x)
        if out_var is not None:
            st.has_snr_output = True
            st.out_noise_var_sum += float(out_var.sum())
            if signal.dim() >= 2:
                per_unit = diag.units(out_var).sum(dim=0)
                seen = st.unit_out_noise
                st.unit_out_noise = per_unit if seen is None else seen + per_unit
    st.grad_sq += sum(float(g.double().square().sum()) for g in grads if g is not None)
    st.seen += x.numel()


def _union(seen: torch.Tensor | None, now: torch.Tensor) -> torch.Tensor:
    return now if seen is None else seen | now


def _accumulate_units(st: _LayerStats, signal: torch.Tensor, noise_var: torch.Tensor) -> None:
    """Add one batch's [samples, units] signal and noise variance to the per-unit sums."""
    sums = (signal.sum(dim=0), signal.square().sum(dim=0), noise_var.sum(dim=0))
    if st.unit_sums is not None:
        sums = (st.unit_sums[0] + sums[0], st.unit_sums[1] + sums[1], st.unit_sums[2] + sums[2])
    st.unit_sums = sums
    st.unit_samples += len(signal)


def _layer_values(name: str, st: _LayerStats) -> dict[str, float]:
    seen = st.seen
    if not seen:
        return {}
    out: dict[str, float] = {}
    if st.alive is not None:
        out[f"act/{name}/sparsity"] = st.zeros / st.elements
        out[f"act/{name}/dead_fraction"] = 1.0 - st.alive.float().mean().item()
    if st.alive_positions is not None:
        out[f"act/{name}/dead_position_fraction"] = 1.0 - st.alive_positions.float().mean().item()
    if st.has_saturation:
        out[f"act/{name}/saturation"] = st.saturated / seen
    if st.has_snr:
        out.update(_snr_values(name, st))
    out[f"grad/{name}/norm"] = math.sqrt(st.grad_sq)
    return out


def _snr_values(name: str, st: _LayerStats) -> dict[str, float]:
    """act/<layer>/snr (pooled over every element) and snr_unit_median (per unit, then the
    median), and the same two with the output-side noise (snr_output,
    snr_output_unit_median), each left out past SNR_MAX or where there is no noise."""
    out: dict[str, float] = {}
    seen = st.seen
    mean = st.signal_sum / seen
    signal_var = max(st.signal_sq / seen - mean * mean, 0.0)
    pooled = {"snr": st.noise_var_sum / seen}
    if st.has_snr_output:
        pooled["snr_output"] = st.out_noise_var_sum / seen
    for metric, noise_var in pooled.items():
        # Once the noise has annealed to (nearly) nothing the ratio only measures how close
        # to zero the schedule got (1e12 and more): left out past SNR_MAX, as noise-free.
        if noise_var > 0 and signal_var <= SNR_MAX * noise_var:
            out[f"act/{name}/{metric}"] = signal_var / noise_var
    if st.unit_sums is not None:
        total, total_sq, noise_total = st.unit_sums
        n = st.unit_samples
        unit_var = (total_sq / n - (total / n).square()).clamp(min=0.0)
        per_unit = {"snr_unit_median": noise_total}
        if st.unit_out_noise is not None:
            per_unit["snr_output_unit_median"] = st.unit_out_noise
        for metric, noise_sum in per_unit.items():
            median = diag.median_unit_snr(unit_var, noise_sum / n)
            if median is not None and median <= SNR_MAX:
                out[f"act/{name}/{metric}"] = median
    return out
