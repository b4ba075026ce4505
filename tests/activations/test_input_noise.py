"""NANI / NANIS input-noise units."""

import pytest
import torch
from act_helpers import gradcheck_unit

import activations
from activations.base import HARD_SIGMOID, HARD_TANH

X = torch.tensor([-3.0, -1.5, -0.5, 0.3, 0.9, 1.7, 2.5], dtype=torch.float64)
HARD = {"hard_tanh": HARD_TANH.hard, "hard_sigmoid": HARD_SIGMOID.hard, "relu": torch.relu}
SATURATED = {
    "hard_tanh": lambda x: x.abs() >= 1,
    "hard_sigmoid": lambda x: x.abs() >= 2,
    "relu": lambda x: x < 0,
}


def xi_like(x, seed, c):
    return torch.empty_like(x).normal_(0.0, c, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("base", list(HARD))
def test_nani_exact_values_and_eval(base):
    unit = activations.create(f"nani_{base}", generator=torch.Generator().manual_seed(2))
    assert unit.c == 0.05
    torch.testing.assert_close(unit(X), HARD[base](X + xi_like(X, 2, 0.05)))
    assert torch.equal(unit.eval()(X), HARD[base](X))
    assert unit.effective_noise_std(X) == pytest.approx(0.05)


@pytest.mark.parametrize("base", list(HARD))
def test_nanis_noise_only_where_saturated(base):
    unit = activations.create(f"nanis_{base}", generator=torch.Generator().manual_seed(2))
    assert unit.c == 0.25
    sat = SATURATED[base](X)
    expected = HARD[base](X + xi_like(X, 2, 0.25) * sat)
    torch.testing.assert_close(unit(X), expected)
    torch.testing.assert_close(unit.effective_noise_std(X), sat.double() * 0.25)


@pytest.mark.parametrize("name", ["nani_relu", "nanis_relu", "nani_hard_tanh", "nanis_hard_tanh"])
def test_gradcheck(name):
    unit = activations.create(name, generator=torch.Generator().manual_seed(0))
    assert gradcheck_unit(unit, X.clone())


def test_diagnostic_hooks():
    assert activations.create("nani_relu").saturation_mask(X) is None
    assert activations.create("nanis_relu").is_sparse_family
    mask = activations.create("nanis_hard_tanh").saturation_mask(X)
    assert mask.tolist() == [True, True, False, False, False, True, True]
    assert not activations.create("nani_hard_sigmoid").is_sparse_family
