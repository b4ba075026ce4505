"""SGD, Adam and AdamW over a pack's flat parameter buffer, each member with its own lr and
weight decay; the update is torch.optim's, written once for all members and layers.

Member state converts to and from each member's own torch optimizer, so a member's checkpoint
is the same file it would be alone (and resumes alone or packed).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from worker.engine.packed.stacked import StackedMLP

_STATE_KEYS = ("exp_avg", "exp_avg_sq", "momentum_buffer")


class StackedOptimizer:
    """One optimizer over every member: `spec.optimizer` shared but for lr and weight decay."""

    def __init__(self, model: StackedMLP, specs: list[Any]) -> None:
        o = specs[0].optimizer
        self.model, self.name = model, o.name
        self.momentum, self.nesterov = o.momentum, o.nesterov
        self.beta1, self.beta2 = float(o.betas[0]), float(o.betas[1])
        self.eps = 1e-8  # torch's default; the spec does not set it
        self.wd_values = [float(s.optimizer.weight_decay) for s in specs]
        self._wd: Tensor | None = None
        self._lr: tuple[list[float], Tensor] | None = (
            None  # last lrs, spread (lr is often constant)
        )
        self.steps = 0
        self.state: dict[str, Tensor] = {}

    def _per_element(self, values: list[float]) -> Tensor:
        """Per-member scalars spread over the flat buffer (each element gets its member's)."""
        flat = self.model.flat
        return torch.tensor(values, dtype=flat.dtype, device=flat.device)[self.model.member_of]

    @torch.no_grad()
    def step(self, lrs: list[float]) -> None:
        """One update of every member with member lr `lrs[k]`."""
        self.steps += 1
        if self._lr is None or self._lr[0] != lrs:
            self._lr = (list(lrs), self._per_element(lrs))
        p, grad, lr = self.model.flat, self.model.grad, self._lr[1]
        wd = None
        if any(self.wd_values):
            if self._wd is None:
                self._wd = self._per_element(self.wd_values)
            wd = self._wd
        if self.name == "sgd":
            self._sgd(p, grad, lr, wd)
            return
        if wd is not None:
            if self.name == "adamw":
                p.mul_(1 - lr * wd)
            else:
                grad = grad + wd * p
        exp_avg = self.state.setdefault("exp_avg", torch.zeros_like(p))
        exp_avg_sq = self.state.setdefault("exp_avg_sq", torch.zeros_like(p))
        exp_avg.lerp_(grad, 1 - self.beta1)
        exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        bias1 = 1 - self.beta1**self.steps
        bias2_sqrt = (1 - self.beta2**self.steps) ** 0.5
        denom = (exp_avg_sq.sqrt() / bias2_sqrt).add_(self.eps)
        p.sub_(exp_avg / denom * (lr / bias1))

    def _sgd(self, p: Tensor, grad: Tensor, lr: Tensor, wd: Tensor | None) -> None:
        if wd is not None:
            grad = grad + wd * p
        if self.momentum:
            buf = self.state.get("momentum_buffer")
            if buf is None:
                buf = self.state["momentum_buffer"] = grad.detach().clone()
            else:
                buf.mul_(self.momentum).add_(grad)
            grad = grad.add(buf, alpha=self.momentum) if self.nesterov else buf
        p.sub_(grad * lr)

    # -- members --------------------------------------------------------------------------
    def keep(self, index: Tensor) -> None:
        """Only the members at `index` stay; call before the model's own `keep`."""
        self.wd_values = [self.wd_values[i] for i in index.tolist()]
        self._wd = self._lr = None
        self.state = {k: self.model.take(v, index) for k, v in self.state.items()}

    def load_members(self, optimizers: list[torch.optim.Optimizer]) -> None:
        """Stack the state of each member's own torch optimizer (fresh or from a checkpoint)."""
        per_member = [[opt.state.get(p, {}) for p in _params(opt)] for opt in optimizers]
        steps = {int(s["step"]) for states in per_member for s in states if "step" in s}
        self.steps = steps.pop() if len(steps) == 1 else 0
        self.state = {}
        for key in _STATE_KEYS:
            if not all(s.get(key) is not None for states in per_member for s in states):
                continue
            flat = torch.empty_like(self.model.flat)
            for i, view in enumerate(self.model.split(flat)):
                view.copy_(torch.stack([states[i][key] for states in per_member]))
            self.state[key] = flat

    def store_members(self, optimizers: list[torch.optim.Optimizer]) -> None:
        """Write member k's slice of the state into its own torch optimizer (for checkpoints)."""
        if not self.state and self.steps == 0:
            return
        views = {key: self.model.split(flat) for key, flat in self.state.items()}
        for k, opt in enumerate(optimizers):
            for i, p in enumerate(_params(opt)):
                entry: dict[str, Any] = {key: v[i][k].clone() for key, v in views.items()}
                if self.name != "sgd":
                    entry["step"] = torch.tensor(float(self.steps))
                elif "momentum_buffer" not in entry:
                    entry["momentum_buffer"] = None
                opt.state[p] = entry


def _params(opt: torch.optim.Optimizer) -> list[Tensor]:
    return [p for group in opt.param_groups for p in group["params"]]
