"""Activation diagnostics."""

import numpy as np
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


def test_a_conv_unit_is_a_channel_dead_only_if_zero_at_every_position():
    # [batch 2, channels 2, positions 3]: channel 0 fires once (example 1, position 2),
    # channel 1 never. By channel: 1 of 2 dead; by (channel, position): 5 of 6.
    y = torch.zeros(2, 2, 3)
    y[1, 0, 2] = 0.7
    assert diagnostics.dead_fraction(y) == pytest.approx(1 / 2)
    assert diagnostics.dead_position_fraction(y) == pytest.approx(5 / 6)
    flat = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])  # [batch, units]: the same figure
    assert diagnostics.dead_fraction(flat) == diagnostics.dead_position_fraction(flat)
    assert diagnostics.dead_fraction(flat) == pytest.approx(1 / 3)


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


def _spread(variances: list[float], n: int = 8, mean: float = 20.0) -> torch.Tensor:
    """[n, units]: unit u alternates mean +- sqrt(variances[u]), so its variance over the
    examples is exactly variances[u] (all values > 0, so relu leaves them alone)."""
    sign = torch.tensor([1.0, -1.0]).repeat(n // 2)[:, None]
    return mean + sign * torch.tensor(variances, dtype=torch.float64).sqrt()


def test_pooled_and_per_unit_snr_differ_when_one_unit_dominates():
    # Unit variances 300, 1, 1 with noise variance 1 everywhere (noisy_relu, sigma 1):
    # pooled = (300 + 1 + 1) / 3 / 1 = 100.67, the per-unit median = 1, a factor ~100.
    unit = activations.create("noisy_relu", sigma=1.0)
    x = _spread([300.0, 1.0, 1.0])
    signal = np.maximum(x.numpy(), 0.0)
    assert diagnostics.snr(unit, x) == pytest.approx(np.var(signal) / 1.0, rel=1e-6)
    assert diagnostics.snr(unit, x) == pytest.approx(302 / 3, rel=1e-6)
    median = diagnostics.snr_unit_median(unit, x)
    assert median == pytest.approx(np.median(np.var(signal, axis=0) / 1.0), rel=1e-6)
    assert median == pytest.approx(1.0, rel=1e-6)
    assert diagnostics.snr_unit_median(activations.create("relu"), x) is None


def test_per_unit_snr_leaves_out_units_without_noise():
    # nanis_relu adds noise (std c = 0.5 here) only where x < 0: unit 0 is never negative,
    # so it has no noise and is left out; the median of the other two is their mean.
    unit = activations.create("nanis_relu", c=0.5)
    x = torch.tensor([[1.0, -1.0, -2.0], [3.0, 2.0, -1.0], [2.0, 1.0, 4.0], [5.0, -3.0, 1.0]])
    xs = x.numpy()
    signal = np.maximum(xs, 0.0)
    noise_var = (0.5 * (xs < 0)) ** 2
    ratios = np.var(signal, axis=0)[1:] / noise_var.mean(axis=0)[1:]
    assert diagnostics.snr_unit_median(unit, x) == pytest.approx(np.median(ratios), rel=1e-6)
    assert diagnostics.snr(unit, x) == pytest.approx(np.var(signal) / noise_var.mean(), rel=1e-6)
    assert diagnostics.snr_unit_median(unit, x.abs()) is None  # no noise anywhere


def test_per_unit_snr_of_a_conv_output_pools_each_channels_positions():
    unit = activations.create("noisy_relu", sigma=0.5)
    x = torch.randn(6, 4, 5, generator=torch.Generator().manual_seed(0)) * torch.tensor(
        [[0.1], [1.0], [3.0], [10.0]]
    )
    signal = np.maximum(x.numpy(), 0.0)
    per_channel = signal.transpose(1, 0, 2).reshape(4, -1).var(axis=1) / 0.25
    assert diagnostics.snr_unit_median(unit, x) == pytest.approx(np.median(per_channel), rel=1e-5)


def test_saved_bytes_counts_what_autograd_keeps():
    x = torch.randn(1000, requires_grad=True)
    assert saved_bytes(torch.exp, x) == 1000 * 4  # exp saves its output
    assert saved_bytes(lambda t: t + 1, x) == 0
