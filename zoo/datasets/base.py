"""The split/normalisation steps every dataset goes through, and the splits they give."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

Task = Literal["classification", "regression"]
# How inputs are standardised, always with training-split statistics only:
# global = one mean/std; feature = per input feature; channel = per axis-1 channel; none.
Normalise = Literal["global", "feature", "channel", "none"]

# Synthetic sets are generated from a fixed seed so that every experiment seed sees the same
# data (like MNIST-1D's data_seed); the experiment seed only picks the validation split.
SYNTHETIC_SEED = 20160303


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset."""

    name: str
    task: Task
    input_shape: tuple[int, ...]
    num_classes: int  # 0 for regression
    is_sequence: bool = False  # [seq, features] inputs, read step by step by recurrent models

    @property
    def output_dim(self) -> int:
        return self.num_classes if self.task == "classification" else 1


@dataclass
class RawData:
    """A loader's output: a training pool and a test split, before val split and scaling."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    normalise: Normalise = "feature"


def held_out_count(n: int, test_fraction: float) -> int:
    """Examples a generated pool of `n` holds out for test (at least one)."""
    return max(1, round(test_fraction * n))


def validation_count(n_pool: int, val_fraction: float) -> int:
    """Examples of the training pool held out for validation."""
    return round(val_fraction * n_pool)


def fixed_test_split(
    x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int = SYNTHETIC_SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split a generated pool into train and test with a fixed seed (same test set for all)."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = held_out_count(len(x), test_fraction)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


__all__ = [
    "SYNTHETIC_SEED",
    "DatasetInfo",
    "Normalise",
    "RawData",
    "Splits",
    "Task",
    "atomic_save_npz",
    "fixed_test_split",
    "held_out_count",
    "split_and_normalise",
    "validation_count",
]


@dataclass
class Splits:
    """Train/val/test arrays (float32 inputs; int64 labels or float32 targets)."""

    info: DatasetInfo
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {
            "train": (self.x_train, self.y_train),
            "val": (self.x_val, self.y_val),
            "test": (self.x_test, self.y_test),
        }


def split_and_normalise(
    raw: RawData, info: DatasetInfo, *, val_fraction: float, seed: int
) -> Splits:
    """Hold out a seeded validation split, then scale every split by training statistics."""
    n = len(raw.x_train)
    order = np.random.default_rng(seed).permutation(n)
    n_val = validation_count(n, val_fraction)
    val_idx, train_idx = order[:n_val], order[n_val:]
    x_train, x_val = raw.x_train[train_idx], raw.x_train[val_idx]
    mean, std = _statistics(x_train, raw.normalise)
    ydtype = np.int64 if info.task == "classification" else np.float32

    def scale(x: np.ndarray) -> np.ndarray:
        return ((x - mean) / std).astype(np.float32)

    return Splits(
        info=info,
        x_train=scale(x_train),
        y_train=raw.y_train[train_idx].astype(ydtype),
        x_val=scale(x_val),
        y_val=raw.y_train[val_idx].astype(ydtype),
        x_test=scale(raw.x_test),
        y_test=raw.y_test.astype(ydtype),
    )


def _statistics(x: np.ndarray, mode: Normalise) -> tuple[np.ndarray, np.ndarray]:
    x = x.astype(np.float64)
    if mode == "none" or len(x) == 0:
        return np.zeros(1), np.ones(1)
    if mode == "global":
        mean, std = x.mean(keepdims=True), x.std(keepdims=True)
    elif mode == "feature":
        mean, std = x.mean(axis=0, keepdims=True), x.std(axis=0, keepdims=True)
    else:  # channel: every axis but 1
        axes = tuple(a for a in range(x.ndim) if a != 1)
        mean, std = x.mean(axis=axes, keepdims=True), x.std(axis=axes, keepdims=True)
    # Constant features (digits' blank border pixels) keep their scale: never divide by 0.
    return mean, np.where(std < 1e-8, 1.0, std)


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write a cache file so that concurrent workers never read a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
