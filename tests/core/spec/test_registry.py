"""The registries every layer reads: what they refuse, what they list, what they build."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field

from core.spec import ExperimentSpec, known
from core.spec.base import Dataset
from core.spec.datasets import DATASETS, DatasetSpec
from core.spec.estimate import footprint
from core.spec.registry import SpecRegistry
from tests.support import canonical_spec
from zoo.models import build_model


def _fresh() -> SpecRegistry[Dataset]:
    return SpecRegistry("dataset", "name", Dataset, lambda d: d.info())


class Square(Dataset):
    """A test dataset."""

    name: Literal["square"]
    side: int = Field(3, ge=1, le=10)

    def input_shape(self) -> tuple[int, ...]:
        return (self.side, self.side)


def test_a_registration_is_refused_when_taken_unnamed_invalid_or_incomplete() -> None:
    fresh = _fresh()
    fresh.register(Square)
    with pytest.raises(ValueError, match="'square' is already registered"):
        fresh.register(Square)

    class NoLiteral(Dataset):
        name: str

    with pytest.raises(TypeError, match="Literal"):
        fresh.register(NoLiteral)

    class BadDefault(Square):
        name: Literal["bad_default"]  # type: ignore[assignment]
        side: int = Field(30, ge=1, le=10)

    with pytest.raises(ValueError, match="defaults do not validate"):
        fresh.register(BadDefault)

    class NoShape(Dataset):
        name: Literal["no_shape"]

    with pytest.raises(ValueError, match=r"incomplete.*input_shape"):
        fresh.register(NoShape)
    with pytest.raises(TypeError, match="subclass of Dataset"):
        fresh.register(dict)  # type: ignore[arg-type]
    assert fresh.names() == ["square"]


def test_names_per_kind_are_what_the_spec_accepts() -> None:
    assert known.names("dataset") == DATASETS.names()
    assert set(known.names("model")) == {"mlp", "cnn", "gru", "lstm"}
    assert "noisy_relu" in known.names("activation")
    assert "cosine" in known.names("schedule")
    spec = canonical_spec(dataset={"name": "nope"})
    with pytest.raises(ValueError) as caught:
        ExperimentSpec.model_validate(spec)
    assert all(repr(name) in str(caught.value) for name in known.names("dataset"))
    assert DatasetSpec is not None


def test_a_spec_naming_what_is_not_registered_names_the_plugin_it_needs() -> None:
    spec = canonical_spec(
        activation={"name": "noisy_softplus"}, model={"arch": "mlp"}, dataset={"name": "moons"}
    )
    with pytest.raises(known.MissingPlugin) as caught:
        known.require(spec)
    assert caught.value.missing == [("activation", "noisy_softplus")]
    assert "group 'actlab.activations'" in str(caught.value)
    known.require(canonical_spec())  # everything built in: nothing missing


@pytest.mark.parametrize(
    "model",
    [
        {"arch": "mlp", "hidden": [64, 32], "batch_norm": True},
        {"arch": "cnn", "channels": [8, 16]},
        {"arch": "gru", "hidden_size": 24},
        {"arch": "lstm", "hidden_size": 24, "num_layers": 2},
    ],
)
def test_the_parameter_limit_counts_the_model_the_worker_builds(model: dict[str, object]) -> None:
    spec = ExperimentSpec.model_validate(
        {**canonical_spec(dataset={"name": "parity"}), "model": model}
    )
    built = build_model(spec, spec.dataset.info())
    assert footprint(spec).parameters == sum(p.numel() for p in built.parameters())
