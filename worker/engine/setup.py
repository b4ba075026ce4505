"""Build what a run needs from its spec: device, data tensors, model, optimizer, schedules."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import activations
from core.spec.horizon import build_schedule, horizon
from worker.engine import data, heap
from worker.engine.errors import TrainingError
from zoo.datasets.base import DatasetInfo
from zoo.models import build_model


@dataclass
class Data:
    """Every split as tensors already on the device: batches are index slices, no DataLoader."""

    info: DatasetInfo
    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]]

    @property
    def n_train(self) -> int:
        return len(self.tensors["train"][0])


@dataclass
class Run:
    """The built objects of one run (everything but the loop position)."""

    spec: Any
    device: torch.device
    data: Data
    model: nn.Module  # the module whose state is saved
    forward: nn.Module  # what the loop calls (a torch.compile wrapper on CUDA when asked)
    optimizer: torch.optim.Optimizer
    noise_schedule: Any
    lr_schedule: Any
    data_gen: torch.Generator
    noise_gen: torch.Generator
    steps_per_epoch: int
    total_steps: int
    total_epochs: int
    bf16: bool = False
    notes: list[str] = field(default_factory=list)
    noisy_units: list[nn.Module] = field(default_factory=list)


def resolve_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise TrainingError("training.device is cuda but CUDA is not available on this worker")
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def seed_everything(seed: int) -> tuple[int, int]:
    """Seed the global RNGs (init, dropout) and derive independent data-order/noise seeds."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    data_seed, noise_seed = np.random.SeedSequence(seed).generate_state(2)
    return int(data_seed), int(noise_seed)


def load_data(spec: Any, data_dir: Path, device: torch.device) -> Data:
    splits = data.load(spec.dataset, data_dir=data_dir, seed=spec.seed)
    tensors = {
        name: (torch.from_numpy(x).to(device), torch.from_numpy(y).to(device))
        for name, (x, y) in splits.arrays().items()
    }
    return Data(splits.info, tensors)


def build_optimizer(spec: Any, model: nn.Module) -> torch.optim.Optimizer:
    o = spec.optimizer
    params = [p for p in model.parameters() if p.requires_grad]
    if o.name == "sgd":
        return torch.optim.SGD(
            params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay
        )
    cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
    return cls(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)


def build_run(spec: Any, data_dir: Path, *, noise_from: int = 0) -> Run:
    """Everything a run needs; `noise_from`: the step its noise schedule's clock starts at
    (0, or a fork's step when the fork restarts it)."""
    t = spec.training
    device = resolve_device(t.device)
    if device.type == "cpu":
        heap.keep_freed_memory()
    data_seed, noise_seed = seed_everything(spec.seed)
    data = load_data(spec, data_dir, device)
    torch.manual_seed(spec.seed)  # initialisation depends on the seed only
    model = build_model(spec, data.info).to(device)
    data_gen = torch.Generator().manual_seed(data_seed)
    noise_gen = torch.Generator(device=device).manual_seed(noise_seed)
    noisy = activations.noisy_modules(model)
    for unit in noisy:
        unit.generator = noise_gen
    # The same horizon the API's spec preview computes (from the spec's split sizes).
    h = horizon(spec, n_train=data.n_train)
    run = Run(
        spec,
        device,
        data,
        model,
        model,
        build_optimizer(spec, model),
        build_schedule(spec.noise_schedule, h, from_step=noise_from),
        build_schedule(spec.optimizer.lr_schedule, h),
        data_gen,
        noise_gen,
        h.steps_per_epoch,
        h.total_steps,
        h.total_epochs,
        noisy_units=list(noisy),
    )
    _apply_device_options(run)
    return run


def _apply_device_options(run: Run) -> None:
    """bf16 autocast and torch.compile are honoured on CUDA only; elsewhere noted and skipped."""
    t = run.spec.training
    cuda = run.device.type == "cuda"
    if t.precision == "bf16":
        run.bf16 = cuda
        if not cuda:
            run.notes.append("precision bf16 ignored: autocast is used on CUDA only")
    if t.compile:
        if cuda:
            # A noise schedule changes every noisy unit's scale each step, and dynamo guards
            # on Python floats: compiled, each new value would recompile (seen: 8 steps/s).
            # The noisy units run eagerly (on CUDA NoisyReLU is one fused kernel anyway).
            for unit in run.noisy_units:
                unit.forward = torch.compiler.disable(unit.forward)  # type: ignore[method-assign]
            run.forward = torch.compile(run.model)  # type: ignore[assignment]
        else:
            run.notes.append("compile ignored: torch.compile is used on CUDA only")
