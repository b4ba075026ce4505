"""What a dataset or model registration is: the base classes a spec class extends, and
the data a dataset's loader hands the engine.

A registration is one pydantic class. Its fields are the spec's parameters (defaults,
ranges, descriptions: the catalogue and the 422s read them); its docstring is the
catalogue description; its class variables and methods give shapes, sizes and the builder.
Built-ins (core/spec/datasets.py, core/spec/models.py) and plugins (docs/extending.md)
extend the same classes. A registration refers to its loader and builder functions directly:
they live below this layer, in the pure-PyTorch package `zoo`, which imports nothing of
actlab's but `activations`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from zoo.datasets.base import DatasetInfo, RawData, Task, held_out_count, validation_count

if TYPE_CHECKING:
    from torch import nn


class Dataset(BaseModel):
    """Base of every dataset spec; a subclass declares `name: Literal["its-name"]`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    task: ClassVar[Task] = "classification"
    classes: ClassVar[int] = 0  # classes of a classification task
    is_sequence: ClassVar[bool] = False
    # Called as loader(spec, data_dir) -> RawData (a function of zoo.datasets, or a
    # plugin's); or override load.
    loader: ClassVar[Callable[[Any, Path], RawData]]
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
        return type(self).loader(self, Path(data_dir))


class Model(BaseModel):
    """Base of every model spec; a subclass declares `arch: Literal["its-arch"]`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    # Called as builder(spec, info, act) -> nn.Module (a function of zoo.models, or a
    # plugin's), where act(width) builds the experiment's activation for a layer of that width.
    builder: ClassVar[Callable[..., nn.Module]]

    def build(self, info: DatasetInfo, act: Any) -> nn.Module:
        """The network for the dataset `info`, with `act(width)` as its activation."""
        return type(self).builder(self, info, act)

    def time_axis(self, input_shape: tuple[int, ...]) -> int | None:
        """The axis of one example that the network steps along one position at a time, so
        that what a forward pass saves grows linearly with its length; None if none."""
        return None
