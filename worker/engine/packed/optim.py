"""SGD, Adam and AdamW over stacked parameters `[K, ...]`, each member with its own lr and
weight decay; the update is torch.optim's, written once for all members.

Member state converts to and from each member's own torch optimizer, so a member's checkpoint
is the same file it would be alone (and resumes alone or packed).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def _member_view(values: list[float], like: Tensor) -> Tensor:
    """Per-member scalars shaped `[K, 1, ...]` to broadcast against a stacked parameter."""
    t = torch.tensor(values, dtype=like.dtype, device=like.device)
    return t.view(-1, *([1] * (like.dim() - 1)))


class StackedOptimizer:
    """One optimizer over every member: `spec.optimizer` shared but for lr and weight decay."""

    def __init__(self, name: str, params: list[Tensor], specs: list[Any]) -> None:
        o = specs[0].optimizer
        self.name, self.params = name, params
        self.momentum, self.nesterov = o.momentum, o.nesterov
        self.beta1, self.beta2 = float(o.betas[0]), float(o.betas[1])
        self.eps = 1e-8  # torch's default; the spec does not set it
        self.wd = [float(s.optimizer.weight_decay) for s in specs]
        self.steps = 0
        self.state: list[dict[str, Tensor]] = [{} for _ in params]

    def step(self, lrs: list[float]) -> None:
        """One update of every member with member lr `lrs[k]`."""
        self.steps += 1
        with torch.no_grad():
            for p, state in zip(self.params, self.state, strict=True):
                if p.grad is not None:
                    self._update(p, p.grad, state, _member_view(lrs, p))

    def _update(self, p: Tensor, grad: Tensor, state: dict[str, Tensor], lr: Tensor) -> None:
        wd = _member_view(self.wd, p) if any(self.wd) else None
        if self.name == "sgd":
            self._sgd(p, grad, state, lr, wd)
            return
        if wd is not None:
            if self.name == "adamw":
                p.mul_(1 - lr * wd)
            else:
                grad = grad + wd * p
        exp_avg = state.setdefault("exp_avg", torch.zeros_like(p))
        exp_avg_sq = state.setdefault("exp_avg_sq", torch.zeros_like(p))
        exp_avg.lerp_(grad, 1 - self.beta1)
        exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        bias1 = 1 - self.beta1**self.steps
        bias2_sqrt = (1 - self.beta2**self.steps) ** 0.5
        denom = (exp_avg_sq.sqrt() / bias2_sqrt).add_(self.eps)
        p.sub_(exp_avg / denom * (lr / bias1))

    def _sgd(
        self, p: Tensor, grad: Tensor, state: dict[str, Tensor], lr: Tensor, wd: Tensor | None
    ) -> None:
        if wd is not None:
            grad = grad + wd * p
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.detach().clone()
            else:
                buf.mul_(self.momentum).add_(grad)
            grad = grad.add(buf, alpha=self.momentum) if self.nesterov else buf
        p.sub_(grad * lr)

    # -- members --------------------------------------------------------------------------
    def keep(self, index: Tensor, params: list[Tensor]) -> None:
        """Only the members at `index` stay (the others left the pack)."""
        self.params = params
        self.wd = [self.wd[i] for i in index.tolist()]
        self.state = [{k: v[index] for k, v in s.items()} for s in self.state]

    def load_members(self, optimizers: list[torch.optim.Optimizer]) -> None:
        """Stack the state of each member's own torch optimizer (fresh or from a checkpoint)."""
        per_member = [[opt.state.get(p, {}) for p in _params(opt)] for opt in optimizers]
        steps = {int(s["step"]) for states in per_member for s in states if "step" in s}
        self.steps = steps.pop() if len(steps) == 1 else 0
        for i, _ in enumerate(self.params):
            rows = [states[i] for states in per_member]
            keys = set(rows[0])
            self.state[i] = {
                k: torch.stack([r[k] for r in rows]).to(self.params[i].device)
                for k in keys
                if k in ("exp_avg", "exp_avg_sq", "momentum_buffer") and _all_have(rows, k)
            }

    def store_members(self, optimizers: list[torch.optim.Optimizer]) -> None:
        """Write member k's slice of the state into its own torch optimizer (for checkpoints)."""
        for k, opt in enumerate(optimizers):
            for i, p in enumerate(_params(opt)):
                if not self.state[i] and self.steps == 0:
                    continue
                entry: dict[str, Any] = {n: v[k].clone() for n, v in self.state[i].items()}
                if self.name != "sgd":
                    entry["step"] = torch.tensor(float(self.steps))
                opt.state[p] = entry


def _all_have(rows: list[dict[str, Any]], key: str) -> bool:
    """Every member's state has `key` (a momentum buffer exists after the first step only)."""
    return all(key in r and r[key] is not None for r in rows)


def _params(opt: torch.optim.Optimizer) -> list[Tensor]:
    return [p for group in opt.param_groups for p in group["params"]]
