"""The submit-time estimate of a recurrent network: two short meta passes, extrapolated.

Measuring every position made one submit of a long sequence cost seconds of the API's CPU
(784 positions of noisy gates); the extrapolation must equal the full measurement exactly.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from core.spec import ExperimentSpec, estimate
from tests.support import canonical_spec

CASES = [
    ({"name": "adding", "seq_len": 40, "num_samples": 200}, "gru", "noisy_hard_sigmoid"),
    ({"name": "adding", "seq_len": 40, "num_samples": 200}, "lstm", "sigmoid"),
    ({"name": "parity", "seq_len": 17, "num_samples": 200}, "lstm", "noisy_hard_sigmoid"),
    ({"name": "digits", "as_image": True}, "gru", "sigmoid"),  # an image, row by row
    ({"name": "moons", "num_samples": 200}, "gru", "sigmoid"),  # too short to extrapolate
]


@pytest.mark.parametrize(("dataset", "arch", "gate"), CASES)
def test_extrapolated_activations_equal_the_full_measurement(
    dataset: dict[str, Any], arch: str, gate: str
) -> None:
    body = canonical_spec(activation={"name": "noisy_hard_tanh", "params": {}})
    body["dataset"] = dataset
    body["model"] = {
        "arch": arch,
        "hidden_size": 16,
        "num_layers": 2,
        "gate_activation": {"name": gate},
    }
    spec = ExperimentSpec.model_validate(body)
    info = spec.dataset.info()
    with torch.device("meta"):
        model = spec.model.build(info, spec.activation.build)
    shape, axis = info.input_shape, spec.model.time_axis(info.input_shape)
    for measure in (estimate._saved_bytes, estimate._eval_bytes):
        full = measure(model, (8, *shape))
        assert estimate._along(measure, model, 8, shape, axis) == full, measure.__name__


def test_a_non_recurrent_model_is_measured_whole() -> None:
    spec = ExperimentSpec.model_validate(canonical_spec())
    assert spec.model.time_axis(spec.dataset.info().input_shape) is None
