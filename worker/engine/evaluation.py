"""Loss, accuracy and the evaluation pass over the val and test splits."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from zoo.datasets.synthetic import ADDING_TOLERANCE

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
HitsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def regression_hit(prediction: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The "acc" of a regression task, per prediction: within the tolerance of the target
    (the adding problem's rule). The one place this rule is written."""
    return (prediction - y).abs() < ADDING_TOLERANCE


def regression_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out.squeeze(-1), y)


def classification_hits(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (out.argmax(dim=1) == y).sum()


def regression_hits(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return regression_hit(out.squeeze(-1), y).sum()


def task_functions(task: str) -> tuple[LossFn, HitsFn]:
    if task == "regression":
        return regression_loss, regression_hits
    return F.cross_entropy, classification_hits


def compact_predictions(task: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """What train accuracy needs of a batch's output, kept until the epoch's count.

    No work per step: hits are counted once per epoch on the concatenated outputs, which
    costs one large op instead of an argmax and a host sync every step.
    """
    if task == "regression":
        return lambda out: out.detach().squeeze(-1)
    return lambda out: out.detach()


def count_hits(task: str, predictions: torch.Tensor, y: torch.Tensor) -> int:
    if task == "regression":
        return int(regression_hit(predictions, y).sum())
    return int((predictions.argmax(dim=1) == y).sum())


def member_hits(task: str, predictions: torch.Tensor, y: torch.Tensor) -> list[int]:
    """`count_hits` of each member of a pack: `predictions` `[K, n, ...]`, `y` `[K, n]`."""
    if task == "regression":
        hit = regression_hit(predictions, y)
    else:
        hit = predictions.argmax(dim=-1) == y
    return hit.sum(dim=1).tolist()


@torch.inference_mode()
def member_scores(
    task: str, outputs: torch.Tensor, y: torch.Tensor, *, batch_size: int
) -> list[tuple[float, float]]:
    """What `evaluate` returns for each member of a pack, from every member's eval-mode
    outputs `[K, n, ...]` on its own targets `y` `[K, n]`: the same chunks and sums, one
    op for all members (the loss with the classes on dim 1, which torch vectorises)."""
    k, n = y.shape
    loss_sum = torch.zeros(k, dtype=torch.float64, device=y.device)
    hits = torch.zeros(k, dtype=torch.int64, device=y.device)
    for start in range(0, n, batch_size):
        out, yb = outputs[:, start : start + batch_size], y[:, start : start + batch_size]
        if task == "regression":
            prediction = out.squeeze(-1)
            loss = (prediction - yb).pow(2).mean(1)
            hit = regression_hit(prediction, yb)
        else:
            loss = F.cross_entropy(out.transpose(1, 2), yb, reduction="none").mean(1)
            hit = out.argmax(dim=-1) == yb
        loss_sum += loss.double() * yb.shape[1]
        hits += hit.sum(1)
    m = max(n, 1)
    return list(zip((loss_sum / m).tolist(), (hits.double() / m).tolist(), strict=True))


def eval_batches(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    bf16: bool = False,
    outputs: torch.Tensor | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(eval-mode output, targets) of each batch of (x, y): from `outputs` when given (the
    model's eval-mode output on all of `x`, computed elsewhere), else from `model` switched
    to eval mode for the pass and back after it. Call under inference mode."""
    was_training = model.training
    if outputs is None:
        model.eval()
    try:
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            if outputs is not None:
                yield outputs[start : start + batch_size], yb
            elif bf16:
                with torch.autocast(x.device.type, dtype=torch.bfloat16):
                    yield model(xb).float(), yb
            else:
                yield model(xb), yb
    finally:
        if outputs is None:
            model.train(was_training)


@torch.inference_mode()
def example_hits(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    task: str,
    batch_size: int,
    bf16: bool = False,
    outputs: torch.Tensor | None = None,
) -> torch.Tensor:
    """Whether each example of (x, y) is a hit for `model` in eval mode (the rule accuracy
    counts: the argmax is the label, or a regression within tolerance), as a bool tensor on
    the CPU: its mean is `evaluate`'s accuracy on the same outputs. `outputs` as in
    `evaluate`."""
    parts = []
    for out, yb in eval_batches(model, x, y, batch_size=batch_size, bf16=bf16, outputs=outputs):
        if task == "regression":
            parts.append(regression_hit(out.squeeze(-1), yb))
        else:
            parts.append(out.argmax(dim=1) == yb)
    return torch.cat(parts).cpu() if parts else torch.zeros(0, dtype=torch.bool)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    task: str,
    batch_size: int,
    bf16: bool = False,
    outputs: torch.Tensor | None = None,
) -> tuple[float, float]:
    """Mean loss and accuracy of `model` in eval mode (no noise, no dropout) on (x, y).

    `outputs`, when given, is the model's eval-mode output on all of `x` (the diagnostics
    pass computed it already), so no forward pass is repeated.
    """
    loss_fn, hits_fn = task_functions(task)
    loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
    hits = torch.zeros((), dtype=torch.int64, device=x.device)
    for out, yb in eval_batches(model, x, y, batch_size=batch_size, bf16=bf16, outputs=outputs):
        loss_sum += loss_fn(out, yb).double() * len(yb)
        hits += hits_fn(out, yb)
    n = max(len(x), 1)
    return loss_sum.item() / n, hits.item() / n
