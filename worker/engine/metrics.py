"""What one evaluation reports: train sums, val/test passes, schedules and diagnostics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from core.spec.metrics import metric
from worker.engine.diagnostics import run_diagnostics
from worker.engine.evaluation import evaluate
from worker.engine.state import LoopState

KnownOutputs = Callable[[str], Tensor | None]  # split -> eval-mode outputs on all of it, or None
# split -> (loss, acc) as `evaluate` gives them on the eval-mode outputs, or None
KnownScores = Callable[[str], tuple[float, float] | None]


def collect(
    trainer: Any,
    run: Any,
    loop: LoopState,
    outputs: KnownOutputs | None = None,
    scores: KnownScores | None = None,
) -> dict[str, float]:
    """Metric name -> value for the evaluation at the loop's current position.

    `outputs(split)`, when given, may return the model's eval-mode output on all of that
    split (a pack computes every member's at once), so no forward pass of its own is run;
    `scores(split)` may return its loss and accuracy on those outputs (a pack scores every
    member at once too).
    """
    t = run.spec.training
    values: dict[str, float] = {}
    if loop.seen:
        values[metric("train", "loss")] = loop.loss_sum / loop.seen
        values[metric("train", "acc")] = loop.correct / loop.seen
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
    for split in ("val", "test"):
        x, y = run.data.tensors[split]
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
    values["noise/scale"] = trainer.noise_scale_now()
    values["lr"] = loop.lr
    values.update(diag_values)
    return values
