"""Dataset specs: one pydantic model per dataset, discriminated by `name`.

The worker's dataset registry implements a loader for each of these names; a
test checks that the two agree.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from service.spec.numbers import Int


class _Dataset(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    # Input width per position and output size: what the model-size limit is computed from.
    features: ClassVar[int] = 1
    outputs: ClassVar[int] = 2

    val_fraction: float = Field(
        0.1, ge=0.0, le=0.5, description="Share of the training split held out for validation."
    )


class MNIST1D(_Dataset):
    """MNIST-1D (Greydanus 2020), generated offline with mnist1d's make_dataset."""

    features, outputs = 40, 10

    name: Literal["mnist1d"]
    num_samples: Int = Field(5000, ge=100, le=200_000)
    train_split: float = Field(
        0.8, gt=0.0, lt=1.0, description="Train share before the test split."
    )
    data_seed: Int = Field(
        42, ge=0, le=2**32 - 1, description="Generation seed (42 = the published data set)."
    )


class Digits(_Dataset):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images)."""

    features, outputs = 64, 10

    name: Literal["digits"]
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9)
    as_image: bool = Field(False, description="Shape (1, 8, 8) for CNNs instead of 64 features.")


class Moons(_Dataset):
    """Two interleaving half circles (synthetic, 2 features, 2 classes)."""

    features, outputs = 2, 2

    name: Literal["moons"]
    num_samples: Int = Field(2000, ge=20, le=1_000_000)
    noise: float = Field(0.2, ge=0.0, le=5.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9)


class Spirals(_Dataset):
    """Interleaved spirals (synthetic, 2 features, one class per arm)."""

    features, outputs = 2, 10

    name: Literal["spirals"]
    num_samples: Int = Field(2000, ge=20, le=1_000_000)
    arms: Int = Field(2, ge=2, le=10)
    turns: float = Field(1.5, gt=0.0, le=10.0)
    noise: float = Field(0.1, ge=0.0, le=5.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9)


class Adding(_Dataset):
    """The adding problem: sum the two marked values of a sequence (regression)."""

    features, outputs = 2, 1

    name: Literal["adding"]
    seq_len: Int = Field(50, ge=2, le=2000)
    num_samples: Int = Field(10_000, ge=20, le=1_000_000)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9)


class Parity(_Dataset):
    """Parity of a binary sequence (classification, 2 classes)."""

    features, outputs = 1, 2

    name: Literal["parity"]
    seq_len: Int = Field(16, ge=2, le=2000)
    num_samples: Int = Field(10_000, ge=20, le=1_000_000)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.9)


class MNIST(_Dataset):
    """MNIST from IDX files in the data directory (fetched with checksums when online)."""

    features, outputs = 784, 10

    name: Literal["mnist"]
    download: bool = Field(True, description="Fetch missing files (checksum-verified) if online.")
    flatten: bool = Field(False, description="784 features instead of (1, 28, 28) images.")


class FashionMNIST(_Dataset):
    """Fashion-MNIST from IDX files in the data directory."""

    features, outputs = 784, 10

    name: Literal["fashion_mnist"]
    download: bool = True
    flatten: bool = False


class CIFAR10(_Dataset):
    """CIFAR-10 from the python pickle batches in the data directory."""

    features, outputs = 3072, 10

    name: Literal["cifar10"]
    download: bool = True
    flatten: bool = False


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
