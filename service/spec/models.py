"""Model specs, discriminated by `arch`. Every architecture takes any registered activation."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from service.spec.activation import ActivationSpec
from service.spec.numbers import Int

Width = Annotated[Int, Field(ge=1, le=65_536)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class MLP(_Model):
    """Fully connected: Linear -> [BatchNorm] -> activation -> [Dropout] per hidden layer."""

    arch: Literal["mlp"]
    hidden: list[Width] = Field(default_factory=lambda: [100, 100], min_length=1, max_length=64)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    batch_norm: bool = False
    residual: bool = Field(
        False, description="Skip connections between hidden layers of equal width."
    )


class CNN(_Model):
    """Convolutional network: 1-D for sequences (mnist1d), 2-D for images; global pooling head."""

    arch: Literal["cnn"]
    channels: list[Width] = Field(default_factory=lambda: [25, 25, 25], min_length=1, max_length=32)
    kernel_size: Int = Field(5, ge=1, le=31)
    stride: Int = Field(2, ge=1, le=8)
    batch_norm: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


class _Recurrent(_Model):
    hidden_size: Int = Field(128, ge=1, le=8192)
    num_layers: Int = Field(1, ge=1, le=8)
    gate_activation: ActivationSpec = Field(
        default_factory=lambda: ActivationSpec(name="sigmoid"),
        description="Replaces the sigmoid gates; the spec's `activation` replaces the tanh.",
    )


class GRU(_Recurrent):
    """GRU whose gate and candidate nonlinearities are pluggable (Gulcehre et al. 2016 setting)."""

    arch: Literal["gru"]


class LSTM(_Recurrent):
    """LSTM whose gate and cell nonlinearities are pluggable (Gulcehre et al. 2016 setting)."""

    arch: Literal["lstm"]


ModelSpec = Annotated[Union[MLP, CNN, GRU, LSTM], Field(discriminator="arch")]

MODEL_SPECS: dict[str, type[_Model]] = {"mlp": MLP, "cnn": CNN, "gru": GRU, "lstm": LSTM}
