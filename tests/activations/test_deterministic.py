"""Deterministic units: exact values on hand-picked inputs, hooks."""

import math

import pytest
import torch

import activations

X = [-3.0, -1.0, -0.5, 0.0, 0.5, 2.0, 3.0]


def _elu(v, a=1.0):
    return v if v > 0 else a * (math.exp(v) - 1)


def _sig(v):
    return 1 / (1 + math.exp(-v))


SELU_A, SELU_L = 1.6732632423543772, 1.0507009873554805
EXPECTED = {
    "relu": lambda v: max(v, 0.0),
    "leaky_relu": lambda v: v if v >= 0 else 0.01 * v,
    "prelu": lambda v: v if v >= 0 else 0.25 * v,
    "elu": _elu,
    "selu": lambda v: SELU_L * _elu(v, SELU_A),
    "softplus": lambda v: math.log1p(math.exp(v)),
    "gelu": lambda v: v * 0.5 * (1 + math.erf(v / math.sqrt(2))),
    "silu": lambda v: v * _sig(v),
    "sigmoid": _sig,
    "tanh": math.tanh,
    "hard_sigmoid": lambda v: min(max(0.25 * v + 0.5, 0.0), 1.0),
    "hard_tanh": lambda v: min(max(v, -1.0), 1.0),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_exact_values(name):
    y = activations.create(name)(torch.tensor(X, dtype=torch.float64))
    expected = torch.tensor([EXPECTED[name](v) for v in X], dtype=torch.float64)
    torch.testing.assert_close(y, expected, rtol=1e-12, atol=1e-12)


def test_hard_sigmoid_is_not_torch_slope():
    y = activations.create("hard_sigmoid")(torch.tensor([1.0, 2.0, -2.0]))
    assert y.tolist() == [0.75, 1.0, 0.0]


def test_parameters_change_values():
    x = torch.tensor([-2.0, 1.0])
    assert activations.create("leaky_relu", negative_slope=0.5)(x).tolist() == [-1.0, 1.0]
    assert activations.create("prelu", init=0.1)(x).tolist() == pytest.approx([-0.2, 1.0])
    prelu = activations.create("prelu", num_parameters=3)
    assert prelu.weight.shape == (3,) and prelu(torch.randn(2, 3, 4)).shape == (2, 3, 4)
    y = activations.create("gelu", approximate="tanh")(x)
    torch.testing.assert_close(y, torch.nn.functional.gelu(x, approximate="tanh"))


def test_saturation_masks_and_sparse_family():
    x = torch.tensor(X)
    assert activations.create("hard_tanh").saturation_mask(x).tolist() == [
        True, True, False, False, False, True, True,
    ]  # fmt: skip
    assert activations.create("hard_sigmoid").saturation_mask(x).tolist() == [
        True, False, False, False, False, True, True,
    ]  # fmt: skip
    assert activations.create("relu").saturation_mask(x) is None
    assert activations.create("gelu").saturation_mask(x) is None
    assert activations.create("relu").is_sparse_family
    assert not activations.create("leaky_relu").is_sparse_family


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_smooth_saturation_is_where_the_slope_is_under_5_percent_of_its_maximum(name):
    # The direct computation: the unit's derivative by autograd on a fine grid, against 5%
    # of its largest value on that grid (at x = 0); the mask must agree everywhere.
    unit = activations.create(name)
    x = torch.linspace(-8.0, 8.0, 160_001, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(unit(x).sum(), x)
    x = x.detach()
    assert torch.equal(unit.saturation_mask(x), slope < 0.05 * slope.max())
    # The threshold itself: the slope there is 5% of the maximum, to float64 precision.
    t = activations.base.TANH_SATURATION if name == "tanh" else activations.base.SIGMOID_SATURATION
    at = torch.tensor([t], dtype=torch.float64, requires_grad=True)
    (edge,) = torch.autograd.grad(unit(at).sum(), at)
    assert edge.item() == pytest.approx(0.05 * (1.0 if name == "tanh" else 0.25), rel=1e-12)
