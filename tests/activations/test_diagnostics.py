"""Activation diagnostics."""

import pytest
import torch

import activations
from activations import diagnostics
from activations.diagnostics import saved_bytes


def test_sparsity_and_dead_fraction():
    y = torch.tensor([[0.0, 1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 3.0]])
    assert diagnostics.sparsity(y) == pytest.approx(5 / 8)
    assert diagnostics.dead_fraction(y) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        diagnostics.dead_fraction(torch.zeros(3))


def test_saturation_fraction():
    x = torch.tensor([[-3.0, -0.5], [0.5, 1.0]])
    assert diagnostics.saturation_fraction(activations.create("hard_tanh"), x) == 0.5
    assert diagnostics.saturation_fraction(activations.create("relu"), x) is None
    assert diagnostics.saturation_fraction(torch.nn.ReLU(), x) is None


def test_snr_noisy_relu():
    unit = activations.create("noisy_relu", sigma=0.5)
    x = torch.randn(1000, 16)
    expected = x.relu().var(unbiased=False).item() / 0.25
    assert diagnostics.snr(unit, x) == pytest.approx(expected, rel=1e-5)
    assert unit.training  # mode restored
    activations.set_noise_scale(unit, 0.0)
    assert diagnostics.snr(unit, x) == float("inf")
    assert diagnostics.snr(activations.create("relu"), x) is None


def test_snr_input_dependent_noise():
    unit = activations.create("noisy_hard_tanh")
    x = torch.randn(500, 8) * 3
    value = diagnostics.snr(unit, x)
    assert value is not None and 0 < value < float("inf")


def test_saved_bytes_counts_what_autograd_keeps():
    x = torch.randn(1000, requires_grad=True)
    assert saved_bytes(torch.exp, x) == 1000 * 4  # exp saves its output
    assert saved_bytes(lambda t: t + 1, x) == 0
