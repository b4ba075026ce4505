"""Whether built runs can share a stacked model (the spec-level rules live in core.spec)."""

from __future__ import annotations

from typing import Any

from core.spec.packing import pack_key
from core.spec.packing import unpackable_reason as spec_reason
from zoo.models.mlp import MLP

_LINEAR = (".linear.weight", ".linear.bias", "head.weight", "head.bias")


def stack_reason(run: Any) -> str | None:
    """Why this run cannot be stacked at all; None if it can."""
    reason = spec_reason(run.spec.model_dump(mode="json"))
    if reason is not None:
        return reason
    if not isinstance(run.model, MLP) or run.forward is not run.model or run.bf16:
        return "not a plain MLP run"
    if any(not name.endswith(_LINEAR) for name, _ in run.model.named_parameters()):
        return "the model has parameters besides its linear layers"
    return None


def unpackable_reason(lead: Any, run: Any) -> str | None:
    """Why `run` cannot join `lead`'s pack; None if it can."""
    reason = stack_reason(run) or stack_reason(lead)
    if reason is not None:
        return reason
    if pack_key(lead.spec.model_dump(mode="json")) != pack_key(run.spec.model_dump(mode="json")):
        return "the specs differ in more than the packable fields"
    if lead.data.n_train != run.data.n_train or lead.device != run.device:
        return "different data sizes or devices"
    return None
