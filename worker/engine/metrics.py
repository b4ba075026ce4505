"""What one evaluation reports: eval-mode train/val/test passes, the running train means,
schedules and diagnostics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from core.spec.metrics import RUNNING, SPLITS, metric
from worker.engine.diagnostics import run_diagnostics
from worker.engine.evaluation import evaluate
from worker.engine.state import LoopState

KnownOutputs = Callable[[str], Tensor | None]  # split -> eval-mode outputs on all of it, or None
# split -> (loss, acc) as `evaluate` gives them on the eval-mode outputs, or None
KnownScores = Callable[[str], tuple[float, float] | None]


def eval_set(run: Any, split: str) -> tuple[Tensor, Tensor]:
    """The examples `split`'s eval-mode scores are measured on: all of val and test, and the
    first `training.train_eval_size` of the training split (the split's fixed order, so the
    same examples every evaluation; none when 0)."""
    x, y = run.data.tensors[split]
    if split == "train":
        n = run.spec.training.train_eval_size
        return x[:n], y[:n]
    return x, y


def collect(
    trainer: Any,
    run: Any,
    loop: LoopState,
    outputs: KnownOutputs | None = None,
    scores: KnownScores | None = None,
) -> dict[str, float]:
    """Metric name -> value for the evaluation at the loop's current position.

    Every split's scores are `evaluate`'s, in eval mode, on `eval_set(run, split)`; eval mode
    draws no noise, so an evaluation takes nothing from the training random streams.
    `outputs(split)`, when given, may return the model's eval-mode output on all of that
    eval set (a pack computes every member's at once), so no forward pass of its own is run;
    `scores(split)` may return its loss and accuracy on those outputs (a pack scores every
    member at once too).
    """
    t = run.spec.training
    values: dict[str, float] = {}
    if loop.seen:  # the epoch's minibatches as trained (noise on): not train/*
        values[metric(RUNNING, "loss")] = loop.loss_sum / loop.seen
        values[metric(RUNNING, "acc")] = loop.correct / loop.seen
    diag_split, diag_out = None, None
    diag_values: dict[str, float] = {}
    last = loop.step >= run.total_steps  # the final evaluation always has diagnostics
    if t.diagnostics_every and ((loop.evals + 1) % t.diagnostics_every == 0 or last):
        diag_split = "val" if len(run.data.tensors["val"][0]) else "test"
        x, y = run.data.tensors[diag_split]
        # The uncompiled model: hooks on a torch.compile'd graph would force recompiles.
        diag_values, diag_out = run_diagnostics(
            run.model, x, y, trainer.loss_fn, batch_size=t.eval_batch_size
        )
    for split in SPLITS:
        x, y = eval_set(run, split)
        if not len(x):
            continue
        known = diag_out if split == diag_split and not run.bf16 else None
        given = scores(split) if known is None and scores is not None else None
        if given is None:
            if known is None and outputs is not None:
                known = outputs(split)
            given = evaluate(
                run.forward,
                x,
                y,
                task=run.data.info.task,
                batch_size=t.eval_batch_size,
                bf16=run.bf16,
                outputs=known,
            )
        values[metric(split, "loss")], values[metric(split, "acc")] = given
    if run.noisy_units:  # a unit without noise (relu, tanh) has no level to report
        values["noise/scale"] = trainer.noise_scale_now()
    values["lr"] = loop.lr
    values.update(diag_values)
    return values
