"""Dataset registry: one loader per name of `service.spec.datasets.DATASET_SPECS`.

`load(spec.dataset, data_dir=..., seed=...)` returns seeded train/val/test splits scaled
with training statistics only; `catalogue()` describes every dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from worker.engine.datasets import files, synthetic
from worker.engine.datasets.base import (
    DatasetEntry,
    DatasetInfo,
    RawData,
    Splits,
    split_and_normalise,
)
from worker.engine.datasets.mnist1d import load_mnist1d
from worker.engine.errors import DatasetUnavailable

__all__ = ["DatasetInfo", "DatasetUnavailable", "Splits", "catalogue", "load", "names"]


def _image(channels: int, size: int) -> Any:
    return lambda s: (channels * size * size,) if s.flatten else (channels, size, size)


_ENTRIES: dict[str, DatasetEntry] = {
    e.name: e
    for e in (
        DatasetEntry(
            "mnist1d",
            "MNIST-1D (Greydanus 2020): 40-sample 1-D digits, generated offline",
            "classification",
            10,
            load_mnist1d,
            lambda s: (40,),
        ),
        DatasetEntry(
            "digits",
            "scikit-learn's bundled 8x8 handwritten digits",
            "classification",
            10,
            synthetic.load_digits,
            lambda s: (1, 8, 8) if s.as_image else (64,),
        ),
        DatasetEntry(
            "moons",
            "two interleaving half circles",
            "classification",
            2,
            synthetic.load_moons,
            lambda s: (2,),
        ),
        DatasetEntry(
            "spirals",
            "interleaved spirals, one class per arm",
            "classification",
            0,
            synthetic.load_spirals,
            lambda s: (2,),
        ),
        DatasetEntry(
            "adding",
            "adding problem: sum of the two marked values (MSE; acc = "
            f"|error| < {synthetic.ADDING_TOLERANCE}; baseline MSE 0.167)",
            "regression",
            0,
            synthetic.load_adding,
            lambda s: (s.seq_len, 2),
            is_sequence=True,
        ),
        DatasetEntry(
            "parity",
            "parity of a binary sequence",
            "classification",
            2,
            synthetic.load_parity,
            lambda s: (s.seq_len, 1),
            is_sequence=True,
        ),
        DatasetEntry(
            "mnist",
            "MNIST handwritten digits (IDX files)",
            "classification",
            10,
            files.load_mnist,
            _image(1, 28),
        ),
        DatasetEntry(
            "fashion_mnist",
            "Fashion-MNIST clothing images (IDX files)",
            "classification",
            10,
            files.load_fashion_mnist,
            _image(1, 28),
        ),
        DatasetEntry(
            "cifar10",
            "CIFAR-10 colour images (python pickle batches)",
            "classification",
            10,
            files.load_cifar10,
            _image(3, 32),
        ),
    )
}


def names() -> list[str]:
    return sorted(_ENTRIES)


def info_for(spec: Any) -> DatasetInfo:
    """Shape, task and classes of a dataset spec, without loading anything."""
    entry = _ENTRIES[spec.name]
    classes = spec.arms if spec.name == "spirals" else entry.num_classes
    return DatasetInfo(entry.name, entry.task, entry.shape(spec), classes, entry.is_sequence)


def load(spec: Any, *, data_dir: Path, seed: int) -> Splits:
    """Load (or generate) the dataset of `spec`; `seed` picks the validation split."""
    raw = _ENTRIES[spec.name].load(spec, Path(data_dir))
    _check_sizes(spec, raw)
    return split_and_normalise(raw, info_for(spec), val_fraction=spec.val_fraction, seed=seed)


def _check_sizes(spec: Any, raw: RawData) -> None:
    """The loaded pool and test split must have the sizes the spec promises the API."""
    found, expected = (len(raw.x_train), len(raw.x_test)), spec.split_sizes()
    if found != tuple(expected):
        raise DatasetUnavailable(
            f"{spec.name}: loaded {found[0]} training and {found[1]} test examples, "
            f"expected {expected[0]} and {expected[1]}"
        )


def catalogue() -> list[dict[str, Any]]:
    """Name, description, task, default input shape and classes of every dataset."""
    from service.spec.datasets import DATASET_SPECS

    rows = []
    for name in names():
        entry = _ENTRIES[name]
        default = DATASET_SPECS[name](name=name)  # type: ignore[call-arg]
        info = info_for(default)
        rows.append(
            {
                "name": name,
                "description": entry.description,
                "task": entry.task,
                "input_shape": list(info.input_shape),
                "classes": info.num_classes,
            }
        )
    return rows
