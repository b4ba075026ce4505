"""Loading a dataset spec: its registration's loader, then a seeded split and scaling.

The registrations (shapes, tasks, loaders) are the spec classes of `core.spec.datasets`,
their loaders are in `zoo.datasets`; `load(spec.dataset, data_dir=..., seed=...)` returns
seeded train/val/test splits scaled with training statistics only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.datasets.base import RawData, Splits, split_and_normalise
from zoo.datasets.errors import DatasetUnavailable

__all__ = ["load"]


def load(spec: Any, *, data_dir: Path, seed: int) -> Splits:
    """Load (or generate) the dataset of `spec`; `seed` picks the validation split."""
    raw = spec.load(Path(data_dir))
    _check_sizes(spec, raw)
    return split_and_normalise(raw, spec.info(), val_fraction=spec.val_fraction, seed=seed)


def _check_sizes(spec: Any, raw: RawData) -> None:
    """The loaded pool and test split must have the sizes the spec promises the API."""
    found, expected = (len(raw.x_train), len(raw.x_test)), tuple(spec.split_sizes())
    if found != expected:
        raise DatasetUnavailable(
            f"{spec.name}: loaded {found[0]} training and {found[1]} test examples, "
            f"expected {expected[0]} and {expected[1]}"
        )
