"""The saturated elements of a noisy hard unit's input, by flat index.

Outside the flat region Delta = 0, so sigma = 0 and phi = u exactly: the noise matters at
these n elements only. Where at most a quarter of a small CPU tensor saturates, ``hard_dense``
draws xi for them alone, one value each in this (row-major) order. An earlier path ran the
formulas on the gathered elements with index ops; ``hard_dense`` replaced it (the index ops
cost more than the dense ops they saved).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .base import HardSpec


def saturated_index(x: Tensor, spec: HardSpec) -> Tensor:
    """Flat indices (int64, ascending) of the elements of contiguous ``x`` where Delta != 0."""
    return F.softshrink(x, spec.threshold).view(-1).nonzero().view(-1)
