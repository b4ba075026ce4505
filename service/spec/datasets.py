"""Dataset specs: one pydantic model per dataset, discriminated by `name`.

The worker's dataset registry implements a loader for each of these names; a
test checks that the two agree. Each spec also knows its split sizes without loading
anything (`split_sizes()`, `train_size()`): the loaders split with the same functions and
check the files against the same constants, so the API's step counts cannot drift from them.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

# Sizes fixed by a data set's files or package: (training pool, test split).
DIGITS_SAMPLES = 1797
IDX_SPLITS = (60_000, 10_000)
CIFAR10_SPLITS = (50_000, 10_000)


def held_out_count(n: int, test_fraction: float) -> int:
    """Examples a generated pool of `n` holds out for test (at least one)."""
    return max(1, round(test_fraction * n))


def validation_count(n_pool: int, val_fraction: float) -> int:
    """Examples of the training pool held out for validation."""
    return round(val_fraction * n_pool)


def _generated(n: int, test_fraction: float) -> tuple[int, int]:
    n_test = held_out_count(n, test_fraction)
    return n - n_test, n_test


class _Dataset(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    # Input width per position and output size: what the model-size limit is computed from.
    features: ClassVar[int] = 1
    outputs: ClassVar[int] = 2

    val_fraction: float = Field(
        0.1, ge=0.0, le=0.5, description="Share of the training split held out for validation."
    )

    def split_sizes(self) -> tuple[int, int]:
        """(training pool, test) example counts, before the validation hold-out."""
        raise NotImplementedError

    def train_size(self) -> int:
        """Examples in the training split the optimizer steps through."""
        pool = self.split_sizes()[0]
        return pool - validation_count(pool, self.val_fraction)


class MNIST1D(_Dataset):
    """MNIST-1D (Greydanus 2020), generated offline with mnist1d's make_dataset."""

    features, outputs = 40, 10

    name: Literal["mnist1d"]
    num_samples: int = Field(5000, ge=100, le=200_000)
    train_split: float = Field(
        0.8, gt=0.0, lt=1.0, description="Train share before the test split."
    )
    data_seed: int = Field(
        42, ge=0, le=2**32 - 1, description="Generation seed (42 = the published data set)."
    )

    def split_sizes(self) -> tuple[int, int]:
        # mnist1d's make_dataset: num_samples // 10 per class, then int(n * train_split).
        n = self.num_samples // self.outputs * self.outputs
        n_train = int(n * self.train_split)
        return n_train, n - n_train


class Digits(_Dataset):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images)."""

    features, outputs = 64, 10

    name: Literal["digits"]
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9)
    as_image: bool = Field(False, description="Shape (1, 8, 8) for CNNs instead of 64 features.")

    def split_sizes(self) -> tuple[int, int]:
        return _generated(DIGITS_SAMPLES, self.test_fraction)


class Moons(_Dataset):
    """Two interleaving half circles (synthetic, 2 features, 2 classes)."""

    features, outputs = 2, 2

    name: Literal["moons"]
    num_samples: int = Field(2000, ge=20, le=1_000_000)
    noise: float = Field(0.2, ge=0.0, le=5.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9)

    def split_sizes(self) -> tuple[int, int]:
        return _generated(self.num_samples, self.test_fraction)


class Spirals(_Dataset):
    """Interleaved spirals (synthetic, 2 features, one class per arm)."""

    features, outputs = 2, 10

    name: Literal["spirals"]
    num_samples: int = Field(2000, ge=20, le=1_000_000)
    arms: int = Field(2, ge=2, le=10)
    turns: float = Field(1.5, gt=0.0, le=10.0)
    noise: float = Field(0.1, ge=0.0, le=5.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9)

    def split_sizes(self) -> tuple[int, int]:
        return _generated(self.num_samples, self.test_fraction)


class Adding(_Dataset):
    """The adding problem: sum the two marked values of a sequence (regression)."""

    features, outputs = 2, 1

    name: Literal["adding"]
    seq_len: int = Field(50, ge=2, le=2000)
    num_samples: int = Field(10_000, ge=20, le=1_000_000)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9)

    def split_sizes(self) -> tuple[int, int]:
        return _generated(self.num_samples, self.test_fraction)


class Parity(_Dataset):
    """Parity of a binary sequence (classification, 2 classes)."""

    features, outputs = 1, 2

    name: Literal["parity"]
    seq_len: int = Field(16, ge=2, le=2000)
    num_samples: int = Field(10_000, ge=20, le=1_000_000)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9)

    def split_sizes(self) -> tuple[int, int]:
        return _generated(self.num_samples, self.test_fraction)


class MNIST(_Dataset):
    """MNIST from IDX files in the data directory (fetched with checksums when online)."""

    features, outputs = 784, 10

    name: Literal["mnist"]
    download: bool = Field(True, description="Fetch missing files (checksum-verified) if online.")
    flatten: bool = Field(False, description="784 features instead of (1, 28, 28) images.")

    def split_sizes(self) -> tuple[int, int]:
        return IDX_SPLITS


class FashionMNIST(_Dataset):
    """Fashion-MNIST from IDX files in the data directory."""

    features, outputs = 784, 10

    name: Literal["fashion_mnist"]
    download: bool = True
    flatten: bool = False

    def split_sizes(self) -> tuple[int, int]:
        return IDX_SPLITS


class CIFAR10(_Dataset):
    """CIFAR-10 from the python pickle batches in the data directory."""

    features, outputs = 3072, 10

    name: Literal["cifar10"]
    download: bool = True
    flatten: bool = False

    def split_sizes(self) -> tuple[int, int]:
        return CIFAR10_SPLITS


def train_size(dataset: _Dataset) -> int:
    """Examples in a dataset spec's training split, computed without loading it."""
    return dataset.train_size()


DatasetSpec = Annotated[
    Union[MNIST1D, Digits, Moons, Spirals, Adding, Parity, MNIST, FashionMNIST, CIFAR10],
    Field(discriminator="name"),
]

DATASET_SPECS: dict[str, type[_Dataset]] = {
    "mnist1d": MNIST1D,
    "digits": Digits,
    "moons": Moons,
    "spirals": Spirals,
    "adding": Adding,
    "parity": Parity,
    "mnist": MNIST,
    "fashion_mnist": FashionMNIST,
    "cifar10": CIFAR10,
}
