"""Which experiments may train packed, and with whom: the packable set, defined once.

Members of a pack differ only in fields a stacked model can carry per member:

- `seed` (and so initialisation, data order, validation split and noise), `name`, `tags`;
- every numeric `activation.params` value (e.g. NoisyReLU's `sigma`), not bools or strings;
- `noise_schedule.start` and `noise_schedule.end`;
- `optimizer.lr` and `optimizer.weight_decay`.

Everything else must be equal. Only MLPs without batch norm or dropout pack (dropout draws
from the process-wide generator, so a member could not draw what it draws alone), with no
gradient clipping, time limit, bf16 or compile, and no learned activation parameters.
"""

from __future__ import annotations

import copy
import json
from typing import Any

# Dotted paths of the fields that may differ inside a pack ("*": every numeric value);
# pack_key blanks exactly these.
PACKABLE_FIELDS = (
    "seed",
    "name",
    "tags",
    "activation.params.*",
    "noise_schedule.start",
    "noise_schedule.end",
    "optimizer.lr",
    "optimizer.weight_decay",
)


def unpackable_reason(spec: dict[str, Any]) -> str | None:
    """Why the experiment with this spec (as JSON) trains alone; None if it can pack."""
    model, training = spec.get("model", {}), spec.get("training", {})
    checks = (
        (model.get("arch") != "mlp", "only mlp models pack"),
        (bool(model.get("batch_norm")), "batch norm does not pack"),
        (float(model.get("dropout") or 0.0) > 0.0, "dropout does not pack"),
        (training.get("grad_clip") is not None, "grad_clip does not pack"),
        (training.get("time_limit_s") is not None, "time_limit_s does not pack"),
        (training.get("precision", "fp32") != "fp32", "bf16 does not pack"),
        (bool(training.get("compile")), "compile does not pack"),
        (_learns(spec.get("activation", {})), "learned activation parameters do not pack"),
    )
    return next((reason for failed, reason in checks if failed), None)


def _learns(activation: dict[str, Any]) -> bool:
    params = activation.get("params") or {}
    return any(k.startswith("learn") and v is True for k, v in params.items())


def pack_key(spec: dict[str, Any]) -> str | None:
    """Equal for two specs exactly when they may share a pack; None if the spec cannot pack."""
    if unpackable_reason(spec) is not None:
        return None
    rest = copy.deepcopy(spec)
    for path in PACKABLE_FIELDS:  # blanked, so that only the other fields decide
        *parents, last = path.split(".")
        node: Any = rest
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        if last == "*":  # every numeric value (not bools or strings)
            for key, value in node.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    node[key] = None
        elif parents:
            node[last] = None
        else:
            node.pop(last, None)
    return json.dumps(rest, sort_keys=True)
