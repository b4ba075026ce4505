"""SGD, Adam and AdamW over a pack's stacked parameters, each member with its own lr and
weight decay, applied by torch's fused optimizer kernels (the ones `torch.optim.Adam(...,
fused=True)` runs): one pass over every member's parameters a step, or, in a pack cut into
shards (`Shards`), one pass over each shard's members on its own thread, right after its
backward.

The parameters, gradients and optimizer state are flat buffers laid out alike (see
`StackedMLP`). Members that share an lr and a weight decay form a group (lr schedules are part
of the pack key, so their lrs stay equal at every step); a pack of one group is updated as one
tensor. A member's state converts to and from its own torch optimizer, so its checkpoint is
the same file it would be alone (and resumes alone or packed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
        self.momentum, self.nesterov = float(o.momentum), bool(o.nesterov)
        self.beta1, self.beta2 = float(o.betas[0]), float(o.betas[1])
        self.eps = 1e-8  # torch's default; the spec does not set it
        self.hyper = [(float(s.optimizer.lr), float(s.optimizer.weight_decay)) for s in specs]
        self.steps = 0
        self.state: dict[str, Tensor] = {}
        self._first = False  # SGD momentum buffers just created: the next step fills them
        self._groups: list[tuple[float, list[int]]] | None = None
        self._lists: dict[tuple[int, ...], dict[str, list[Tensor]]] = {}

    def _keys(self) -> tuple[str, ...]:
        if self.name != "sgd":
            return ("exp_avg", "exp_avg_sq")
        return ("momentum_buffer",) if self.momentum else ()

    def _tensors(self) -> list[tuple[float, list[int]]]:
        """The groups: each one's weight decay and members (creating the state on first use)."""
        if self._groups is not None:
            return self._groups
        for key in self._keys():
            if key not in self.state:
                self.state[key] = torch.zeros_like(self.model.flat)
                self._first = key == "momentum_buffer"  # the SGD kernel copies the gradient
        groups: dict[tuple[float, float], list[int]] = {}
        for k, hyper in enumerate(self.hyper):
            groups.setdefault(hyper, []).append(k)
        self._groups = [(wd, members) for (_, wd), members in groups.items()]
        self._lists = {}
        return self._groups

    def _buffers(self, members: tuple[int, ...]) -> dict[str, list[Tensor]]:
        """The tensors the kernel takes for `members` (sorted): every member's whole padded
        slices, which the kernel's vector loop covers, in one view per run of consecutive
        members and parameter; all members, the flat buffers themselves."""
        if members in self._lists:
            return self._lists[members]
        buffers = {"params": self.model.flat, "grads": self.model.grad, **self.state}
        if members == tuple(range(self.model.k)):
            lists = {name: [flat] for name, flat in buffers.items()}
        else:
            runs = _runs(members)
            lists = {
                name: [rows[a:b].view(-1) for rows in self.model.rows(flat) for a, b in runs]
                for name, flat in buffers.items()
            }
        self._lists[members] = lists
        return lists

    def begin(self, lrs: list[float]) -> Callable[[Iterable[int]], None]:
        """Start one update of every member, member k with lr `lrs[k]`: returns `update`,
        which applies it to the members it is given. Each member is updated once a step;
        disjoint members may be updated at once, on different threads (each product of the
        kernel is elementwise, so a member's update is the same bits however it is cut)."""
        groups = self._tensors()
        self.steps += 1
        first, self._first = self._first, False
        step = torch.tensor(float(self.steps), device=self.model.flat.device)

        def update(members: Iterable[int]) -> None:
            chosen = set(members)
            for wd, group in groups:
                mine = tuple(k for k in group if k in chosen)
                if mine:
                    tensors = self._buffers(mine)
                    self._update(tensors, lr=lrs[mine[0]], wd=wd, step=step, first=first)

        return update

    def step(self, lrs: list[float]) -> None:
        """One update of every member, member k with lr `lrs[k]`."""
        self.begin(lrs)(range(len(self.hyper)))

    @torch.no_grad()
    def _update(
        self, t: dict[str, list[Tensor]], *, lr: float, wd: float, step: Tensor, first: bool
    ) -> None:
        if self.name == "sgd":
            self._sgd(t, lr=lr, wd=wd, first=first)
            return
        update = torch._fused_adamw_ if self.name == "adamw" else torch._fused_adam_
        update(
            t["params"],
            t["grads"],
            t["exp_avg"],
            t["exp_avg_sq"],
            [],
            [step] * len(t["params"]),  # the kernel only reads the step count
            lr=lr,
            beta1=self.beta1,
            beta2=self.beta2,
            weight_decay=wd,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )

    def _sgd(self, t: dict[str, list[Tensor]], *, lr: float, wd: float, first: bool) -> None:
        torch._fused_sgd_(
            t["params"],
            t["grads"],
            t.get("momentum_buffer", []),
            weight_decay=wd,
            momentum=self.momentum,
            lr=lr,
            dampening=0.0,
            nesterov=self.nesterov,
            maximize=False,
            is_first_step=first,
        )

    # -- members --------------------------------------------------------------------------
    def keep(self, index: Tensor) -> None:
        """Only the members at `index` stay; call before the model's own `keep`."""
        self.hyper = [self.hyper[i] for i in index.tolist()]
        self.state = {k: self.model.take(v, index) for k, v in self.state.items()}
        self._groups = None

    def load_members(self, optimizers: list[torch.optim.Optimizer]) -> None:
        """Stack the state of each member's own torch optimizer (fresh or from a checkpoint)."""
        per_member = [[opt.state.get(p, {}) for p in _params(opt)] for opt in optimizers]
        steps = {int(s["step"]) for states in per_member for s in states if "step" in s}
        self.steps = steps.pop() if len(steps) == 1 else 0
        self.state, self._groups = {}, None
        for key in _STATE_KEYS:
            if not all(s.get(key) is not None for states in per_member for s in states):
                continue
            flat = torch.zeros_like(self.model.flat)  # the padding stays zero
            for i, view in enumerate(self.model.split(flat)):
                view.copy_(torch.stack([states[i][key] for states in per_member]))
            self.state[key] = flat

    def store_members(self, optimizers: list[torch.optim.Optimizer]) -> None:
        """Write member k's slice of the state into its own torch optimizer (for checkpoints):
        what torch's optimizer alone holds after as many steps."""
        if self.steps == 0:
            return
        views = {key: self.model.split(flat) for key, flat in self.state.items()}
        for k, opt in enumerate(optimizers):
            for i, p in enumerate(_params(opt)):
                entry: dict[str, Any] = {key: v[i][k].clone() for key, v in views.items()}
                if self.name != "sgd":
                    entry["step"] = torch.tensor(float(self.steps))
                if entry:
                    opt.state[p] = entry


def _runs(members: tuple[int, ...]) -> list[tuple[int, int]]:
    """Sorted member indices as runs `[a, b)` of consecutive ones."""
    runs: list[tuple[int, int]] = []
    for k in members:
        if runs and runs[-1][1] == k:
            runs[-1] = (runs[-1][0], k + 1)
        else:
            runs.append((k, k + 1))
    return runs


def _params(opt: torch.optim.Optimizer) -> list[Tensor]:
    return [p for group in opt.param_groups for p in group["params"]]
