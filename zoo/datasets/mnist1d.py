"""MNIST-1D (Greydanus 2020), generated offline and cached as .npz; never downloaded."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from zoo.datasets.base import RawData, atomic_save_npz


def load_mnist1d(spec: Any, data_dir: Path) -> RawData:
    """The package's make_dataset with the spec's size, split and data seed."""
    name = f"mnist1d-n{spec.num_samples}-split{spec.train_split:g}-seed{spec.data_seed}.npz"
    path = data_dir / "datasets" / "mnist1d" / name
    if not path.exists():
        atomic_save_npz(path, **_generate(spec))
    with np.load(path) as data:
        return RawData(
            x_train=data["x"],
            y_train=data["y"],
            x_test=data["x_test"],
            y_test=data["y_test"],
            normalise="global",
        )


def _generate(spec: Any) -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = spec.num_samples
    args.train_split = spec.train_split
    args.seed = spec.data_seed
    # make_dataset reseeds the global python and numpy RNGs; keep the caller's streams intact.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test")}
