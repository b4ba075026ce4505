"""Model registrations, discriminated by `arch`. Every architecture takes any activation.

Each class is the whole registration (core/spec/base.py): fields and their ranges, the
catalogue description (its docstring) and its builder, which the engine calls and the
submit-time estimate calls on the meta device. Plugins add classes through the
`actlab.models` entry-point group (core/spec/plugins.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from core.spec import plugins
from core.spec.activation import ActivationSpec
from core.spec.base import Model
from core.spec.numbers import Int
from core.spec.registry import SpecRegistry
from zoo.models import cnn, mlp, recurrent

MODELS: SpecRegistry[Model] = SpecRegistry("model", "arch", Model)
Width = Annotated[Int, Field(ge=1, le=65_536)]


@MODELS.register
class MLP(Model):
    """Fully connected: Linear -> [BatchNorm] -> activation -> [Dropout] per hidden layer."""

    builder = mlp.build

    arch: Literal["mlp"]
    hidden: list[Width] = Field(default_factory=lambda: [100, 100], min_length=1, max_length=64)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    batch_norm: bool = False
    residual: bool = Field(
        False, description="Skip connections between hidden layers of equal width."
    )


@MODELS.register
class CNN(Model):
    """Convolutional network: 1-D for sequences (mnist1d), 2-D for images; global pooling head."""

    builder = cnn.build

    arch: Literal["cnn"]
    channels: list[Width] = Field(default_factory=lambda: [25, 25, 25], min_length=1, max_length=32)
    kernel_size: Int = Field(5, ge=1, le=31)
    stride: Int = Field(2, ge=1, le=8)
    batch_norm: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


class _Recurrent(Model):
    builder = recurrent.build

    hidden_size: Int = Field(128, ge=1, le=8192)
    num_layers: Int = Field(1, ge=1, le=8)
    gate_activation: ActivationSpec = Field(
        default_factory=lambda: ActivationSpec(name="sigmoid"),
        description="Replaces the sigmoid gates; the spec's `activation` replaces the tanh.",
    )

    def time_axis(self, input_shape: tuple[int, ...]) -> int | None:
        # As the builder reads an example: a vector as a sequence of scalars, [seq, features]
        # by position, an image [C, H, W] row by row.
        return 1 if len(input_shape) == 3 else 0


@MODELS.register
class GRU(_Recurrent):
    """GRU whose gate and candidate nonlinearities are pluggable (Gulcehre et al. 2016 setting)."""

    arch: Literal["gru"]


@MODELS.register
class LSTM(_Recurrent):
    """LSTM whose gate and cell nonlinearities are pluggable (Gulcehre et al. 2016 setting)."""

    arch: Literal["lstm"]


plugins.load("model", MODELS)

# Built from the registry after the plugins joined it (see core/spec/datasets.py).
if TYPE_CHECKING:  # the type checker sees the base; pydantic sees every registered class
    ModelSpec = Model
else:
    ModelSpec = MODELS.union()
