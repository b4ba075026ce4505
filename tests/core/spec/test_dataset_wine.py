"""The wine dataset: registered in one place, and every part of actlab sees it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from core.spec import ExperimentSpec
from core.spec.estimate import footprint
from tests.support import canonical_spec
from worker.engine import data

SPEC = canonical_spec(dataset={"name": "wine"}, model={"arch": "mlp", "hidden": [32]})


def test_wine_loads_178_examples_of_13_features_in_3_classes(tmp_path: Path) -> None:
    spec = ExperimentSpec.model_validate(SPEC)
    splits = data.load(spec.dataset, data_dir=tmp_path, seed=0)
    total = sum(len(x) for x, _ in splits.arrays().values())
    assert total == spec.dataset.sample_count() == 178
    assert len(splits.x_test) == round(0.2 * 178)
    assert splits.x_train.shape[1:] == (13,) and set(np.unique(splits.y_train)) == {0, 1, 2}
    # Scaled per feature with training statistics: the training split is standardised.
    assert np.allclose(splits.x_train.mean(axis=0), 0.0, atol=1e-5)
    assert np.allclose(splits.x_train.std(axis=0), 1.0, atol=1e-5)


def test_wine_is_in_the_catalogue_and_the_estimate(client: TestClient) -> None:
    rows = {r["name"]: r for r in client.get("/v1/datasets").json()}
    assert rows["wine"]["input_shape"] == [13] and rows["wine"]["classes"] == 3
    assert rows["wine"]["task"] == "classification" and rows["wine"]["source"] == "builtin"
    size = footprint(ExperimentSpec.model_validate(SPEC))
    assert size.parameters == (13 + 1) * 32 + (32 + 1) * 3
    assert size.parts["data"] == 178 * (13 * 4 + 8)
    assert client.post("/v1/experiments", json=SPEC).status_code == 201
