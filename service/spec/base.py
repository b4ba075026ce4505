"""What a dataset or model registration is: the base classes a spec class extends, and
the data a dataset's loader hands the engine.

A registration is one pydantic class. Its fields are the spec's parameters (defaults,
ranges, descriptions: the catalogue and the 422s read them); its docstring is the
catalogue description; its class variables and methods give shapes, sizes and the builder.
Built-ins (service/spec/datasets.py, service/spec/models.py) and plugins (docs/extending.md)
extend the same classes. Builders that need the engine are named by import path
("package.module:function") and imported only when called, so this layer imports no
worker code and the API does not load the engine at start-up.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from torch import nn

Task = Literal["classification", "regression"]
# How inputs are standardised, always with training-split statistics only:
# global = one mean/std; feature = per input feature; channel = per axis-1 channel; none.
Normalise = Literal["global", "feature", "channel", "none"]

# Synthetic sets are generated from a fixed seed so that every experiment seed sees the same
# data (like MNIST-1D's data_seed); the experiment seed only picks the validation split.
SYNTHETIC_SEED = 20160303


def resolve(path: str) -> Any:
    """The object named by "package.module:attribute", imported now."""
    module, _, attribute = path.partition(":")
    if not module or not attribute:
        raise ValueError(f"builder {path!r} is not of the form 'package.module:attribute'")
    return getattr(importlib.import_module(module), attribute)


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


class Dataset(BaseModel):
    """Base of every dataset spec; a subclass declares `name: Literal["its-name"]`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    task: ClassVar[Task] = "classification"
    classes: ClassVar[int] = 0  # classes of a classification task
    is_sequence: ClassVar[bool] = False
    # "package.module:function", called as function(spec, data_dir) -> RawData; or override load.
    loader: ClassVar[str] = ""
    # While the splits are made, the loader's arrays and the float64 statistics copy of the
    # training split live beside the final float32 tensors: about twice their size again.
    staging_factor: ClassVar[float] = 2.0

    val_fraction: float = Field(
        0.1, ge=0.0, le=0.5, description="Share of the training split held out for validation."
    )

    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example (without the batch axis)."""
        raise NotImplementedError(f"{type(self).__name__} must define input_shape()")

    def num_classes(self) -> int:
        return self.classes if self.task == "classification" else 0

    def sample_count(self) -> int:
        """Examples over every split (train, validation and test together)."""
        return int(getattr(self, "num_samples"))  # noqa: B009 (declared by subclasses)

    def split_sizes(self) -> tuple[int, int]:
        """(training pool, test) example counts, before the validation hold-out, without
        loading anything; the engine checks every load against them. The default is a
        generated pool of `sample_count()` examples split by the spec's `test_fraction`."""
        n = self.sample_count()
        n_test = held_out_count(n, getattr(self, "test_fraction"))  # noqa: B009
        return n - n_test, n_test

    def train_size(self) -> int:
        """Examples in the training split the optimizer steps through."""
        pool = self.split_sizes()[0]
        return pool - validation_count(pool, self.val_fraction)

    def info(self) -> DatasetInfo:
        """Shape, task and classes, without loading anything."""
        name = getattr(self, "name")  # noqa: B009
        return DatasetInfo(
            name, self.task, self.input_shape(), self.num_classes(), self.is_sequence
        )

    def load(self, data_dir: Path) -> RawData:
        """Load (or generate) the train pool and test split; the engine splits and scales."""
        return resolve(self.loader)(self, Path(data_dir))


class Model(BaseModel):
    """Base of every model spec; a subclass declares `arch: Literal["its-arch"]`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    # "package.module:function", called as function(spec, info, act) -> nn.Module, where
    # act(width) builds the experiment's activation for a layer of that width.
    builder: ClassVar[str] = ""

    def build(self, info: DatasetInfo, act: Any) -> nn.Module:
        """The network for the dataset `info`, with `act(width)` as its activation."""
        return resolve(self.builder)(self, info, act)

    def time_axis(self, input_shape: tuple[int, ...]) -> int | None:
        """The axis of one example that the network steps along one position at a time, so
        that what a forward pass saves grows linearly with its length; None if none."""
        return None
