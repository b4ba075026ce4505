"""Offline datasets: scikit-learn's digits and moons, spirals, the adding problem, parity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zoo.datasets.base import SYNTHETIC_SEED, RawData, fixed_test_split

# A prediction of the adding problem counts as correct within this distance of the target.
ADDING_TOLERANCE = 0.04

__all__ = ["ADDING_TOLERANCE", "load_adding", "load_digits", "load_moons", "load_parity"]


def load_digits(spec: Any, data_dir: Path) -> RawData:
    """The 1,797 bundled 8x8 digits; 64 features or (1, 8, 8) images."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = bunch.data.astype(np.float32)
    if spec.as_image:
        x = x.reshape(-1, 1, 8, 8)
    parts = fixed_test_split(x, bunch.target, spec.test_fraction)
    # Per-feature scaling would blow up near-constant border pixels: use one global scale.
    return RawData(*parts, normalise="global" if not spec.as_image else "channel")


def load_moons(spec: Any, data_dir: Path) -> RawData:
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=spec.num_samples, noise=spec.noise, random_state=SYNTHETIC_SEED)
    return RawData(*fixed_test_split(x.astype(np.float32), y, spec.test_fraction))


def load_spirals(spec: Any, data_dir: Path) -> RawData:
    """`arms` interleaved Archimedean spirals of `turns` turns, Gaussian noise on each point."""
    rng = np.random.default_rng(SYNTHETIC_SEED)
    y = np.arange(spec.num_samples) % spec.arms
    r = rng.uniform(0.05, 1.0, spec.num_samples)
    theta = 2 * np.pi * (spec.turns * r + y / spec.arms)
    x = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    x = x + rng.normal(0.0, spec.noise * 0.1, x.shape)  # noise relative to the unit radius
    return RawData(*fixed_test_split(x.astype(np.float32), y, spec.test_fraction))


def adding_problem(
    num: int, seq_len: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Hochreiter & Schmidhuber's adding problem: one marker in each half of the sequence.

    Channel 0 holds U(0, 1) values, channel 1 exactly two 1s; the target is the sum of
    the two marked values. Predicting the mean 1.0 gives MSE 1/6 (about 0.167): the
    baseline a model must beat.
    """
    values = rng.uniform(0.0, 1.0, (num, seq_len)).astype(np.float32)
    half = seq_len // 2
    first = rng.integers(0, half, num)
    second = rng.integers(half, seq_len, num)
    marks = np.zeros((num, seq_len), np.float32)
    rows = np.arange(num)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]
    return np.stack([values, marks], axis=2), target.astype(np.float32)


def load_adding(spec: Any, data_dir: Path) -> RawData:
    x, y = adding_problem(spec.num_samples, spec.seq_len, np.random.default_rng(SYNTHETIC_SEED))
    # No scaling: the marker channel must stay exactly 0/1 and values keep their sum.
    return RawData(*fixed_test_split(x, y, spec.test_fraction), normalise="none")


def load_parity(spec: Any, data_dir: Path) -> RawData:
    rng = np.random.default_rng(SYNTHETIC_SEED)
    bits = rng.integers(0, 2, (spec.num_samples, spec.seq_len))
    y = bits.sum(axis=1) % 2
    x = bits.astype(np.float32)[:, :, None]
    return RawData(*fixed_test_split(x, y, spec.test_fraction), normalise="none")
