"""Dataset registrations: one spec class per dataset, discriminated by `name`.

Each class is the whole registration (core/spec/base.py): fields and their ranges, the
catalogue description (its docstring), task, classes and input shape, the sample count
the memory estimate uses, and its loader. Plugins add classes through the
`actlab.datasets` entry-point group (core/spec/plugins.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import Field

from core.spec import plugins
from core.spec.base import Dataset
from core.spec.numbers import Int
from core.spec.registry import SpecRegistry
from zoo.datasets import files, mnist1d, synthetic
from zoo.datasets.base import RawData, fixed_test_split


def _complete(default: Dataset) -> None:
    """What validation, the estimate and the catalogue ask of every dataset, without data."""
    default.info()
    default.sample_count()


DATASETS: SpecRegistry[Dataset] = SpecRegistry("dataset", "name", Dataset, _complete)


@DATASETS.register
class MNIST1D(Dataset):
    """MNIST-1D (Greydanus 2020): 40-sample 1-D digits, generated offline with mnist1d."""

    classes, loader = 10, mnist1d.load_mnist1d
    # MNIST-1D's generator keeps several float64 copies of every example while it builds them.
    staging_factor = 4.0

    name: Literal["mnist1d"]
    num_samples: Int = Field(5000, ge=100, le=200_000)
    train_split: float = Field(
        0.8, gt=0.0, lt=1.0, description="Train share before the test split."
    )
    data_seed: Int = Field(
        42, ge=0, le=2**32 - 1, description="Generation seed (42 = the published data set)."
    )

    def input_shape(self) -> tuple[int, ...]:
        return (40,)

    def split_sizes(self) -> tuple[int, int]:
        # mnist1d's make_dataset: num_samples // 10 per class, then int(n * train_split).
        n = self.num_samples // self.classes * self.classes
        n_train = int(n * self.train_split)
        return n_train, n - n_train


@DATASETS.register
class Digits(Dataset):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images)."""

    classes, loader = 10, synthetic.load_digits

    name: Literal["digits"]
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9)
    as_image: bool = Field(False, description="Shape (1, 8, 8) for CNNs instead of 64 features.")

    def input_shape(self) -> tuple[int, ...]:
        return (1, 8, 8) if self.as_image else (64,)

    def sample_count(self) -> int:
        return 1797


@DATASETS.register
class Moons(Dataset):
    """Two interleaving half circles (synthetic, 2 features, 2 classes)."""

    classes, loader = 2, synthetic.load_moons

    name: Literal["moons"]
    num_samples: Int = Field(2000, ge=20, le=1_000_000)
    noise: float = Field(0.2, ge=0.0, le=5.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9)

    def input_shape(self) -> tuple[int, ...]:
        return (2,)


@DATASETS.register
class Spirals(Dataset):
    """Interleaved spirals (synthetic, 2 features, one class per arm)."""

    loader = synthetic.load_spirals

    name: Literal["spirals"]
    num_samples: Int = Field(2000, ge=20, le=1_000_000)
    arms: Int = Field(2, ge=2, le=10)
    turns: float = Field(1.5, gt=0.0, le=10.0)
    noise: float = Field(0.1, ge=0.0, le=5.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9)

    def input_shape(self) -> tuple[int, ...]:
        return (2,)

    def num_classes(self) -> int:
        return self.arms


@DATASETS.register
class Adding(Dataset):
    """The adding problem: sum the two marked values of a sequence (regression; MSE, acc =
    |error| < 0.04; predicting the mean gives MSE 0.167)."""

    task, is_sequence, loader = "regression", True, synthetic.load_adding

    name: Literal["adding"]
    seq_len: Int = Field(50, ge=2, le=2000)
    num_samples: Int = Field(10_000, ge=20, le=1_000_000)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9)

    def input_shape(self) -> tuple[int, ...]:
        return (self.seq_len, 2)


@DATASETS.register
class Parity(Dataset):
    """Parity of a binary sequence (classification, 2 classes)."""

    classes, is_sequence, loader = 2, True, synthetic.load_parity

    name: Literal["parity"]
    seq_len: Int = Field(16, ge=2, le=2000)
    num_samples: Int = Field(10_000, ge=20, le=1_000_000)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9)

    def input_shape(self) -> tuple[int, ...]:
        return (self.seq_len, 1)


@DATASETS.register
class Wine(Dataset):
    """scikit-learn's bundled wine recognition data (UCI): 178 wines, 13 chemical
    measurements, 3 cultivars (tabular, no download)."""

    classes = 3

    name: Literal["wine"]
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9)

    def input_shape(self) -> tuple[int, ...]:
        return (13,)

    def sample_count(self) -> int:
        return 178

    def load(self, data_dir: Path) -> RawData:
        from sklearn.datasets import load_wine

        bunch = load_wine()
        parts = fixed_test_split(bunch.data.astype(np.float32), bunch.target, self.test_fraction)
        # Measurements span 0.1 to 1,680: scaled per feature, by training statistics.
        return RawData(*parts, normalise="feature")


class _Images(Dataset):
    """Image sets read from files in the data directory: (C, H, W), or flattened."""

    classes: ClassVar[int] = 10
    image: ClassVar[tuple[int, int, int]] = (1, 28, 28)
    splits: ClassVar[tuple[int, int]] = (60_000, 10_000)  # (training pool, test) files

    download: bool = Field(True, description="Fetch missing files (checksum-verified) if online.")
    flatten: bool = Field(False, description="One feature vector instead of (C, H, W) images.")

    def input_shape(self) -> tuple[int, ...]:
        c, h, w = self.image
        return (c * h * w,) if self.flatten else (c, h, w)

    def sample_count(self) -> int:
        return sum(self.splits)

    def split_sizes(self) -> tuple[int, int]:
        return self.splits


@DATASETS.register
class MNIST(_Images):
    """MNIST handwritten digits from IDX files in the data directory (fetched with checksums
    when online)."""

    loader = files.load_mnist

    name: Literal["mnist"]


@DATASETS.register
class FashionMNIST(_Images):
    """Fashion-MNIST clothing images from IDX files in the data directory."""

    loader = files.load_fashion_mnist

    name: Literal["fashion_mnist"]


@DATASETS.register
class CIFAR10(_Images):
    """CIFAR-10 colour images from the python pickle batches in the data directory."""

    image, splits, loader = (3, 32, 32), (50_000, 10_000), files.load_cifar10

    name: Literal["cifar10"]


plugins.load("dataset", DATASETS)

# Built from the registry after the plugins joined it: validation and the OpenAPI schema
# see every registered dataset.
if TYPE_CHECKING:  # the type checker sees the base; pydantic sees every registered class
    DatasetSpec = Dataset
else:
    DatasetSpec = DATASETS.union()
