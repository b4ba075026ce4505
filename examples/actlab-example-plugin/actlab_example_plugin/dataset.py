"""xor: points in the square, labelled by the sign of x0 * x1 (a problem no linear model
solves), registered like a built-in dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from core.spec.base import Dataset
from zoo.datasets.base import SYNTHETIC_SEED, RawData, fixed_test_split


class XOR(Dataset):
    """XOR: 2 features uniform in [-1, 1], class 1 where x0 * x1 > 0, then Gaussian noise
    on the inputs (synthetic, 2 classes)."""

    classes = 2

    name: Literal["xor"]
    num_samples: int = Field(2000, ge=20, le=1_000_000)
    noise: float = Field(0.05, ge=0.0, le=1.0, description="Std of the noise added to inputs.")
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9)

    def input_shape(self) -> tuple[int, ...]:
        return (2,)

    def load(self, data_dir: Path) -> RawData:
        # Generated from a fixed seed: every experiment seed sees the same data set.
        rng = np.random.default_rng(SYNTHETIC_SEED)
        x = rng.uniform(-1.0, 1.0, (self.num_samples, 2))
        y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
        x = (x + rng.normal(0.0, self.noise, x.shape)).astype(np.float32)
        return RawData(*fixed_test_split(x, y, self.test_fraction))
