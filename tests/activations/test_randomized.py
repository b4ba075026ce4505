"""RReLU and Gaussian dropout."""

import math

import pytest
import torch
from act_helpers import away_from, gradcheck_unit

import activations


def seeded(name, seed=0, **params):
    return activations.create(name, generator=torch.Generator().manual_seed(seed), **params)


def test_rrelu_train_slopes_in_range_and_eval_mid():
    unit = seeded("rrelu")
    x = -torch.ones(1_000_000, dtype=torch.float64)
    slope = -unit(x)
    lo, hi = 1 / 8, 1 / 3
    assert slope.min() >= lo and slope.max() <= hi
    assert slope.mean().item() == pytest.approx((lo + hi) / 2, abs=3e-4)
    assert slope.var().item() == pytest.approx((hi - lo) ** 2 / 12, rel=0.01)
    pos = torch.tensor([0.0, 2.0], dtype=torch.float64)
    assert torch.equal(unit(pos), pos)
    unit.eval()
    torch.testing.assert_close(unit(torch.tensor([-2.0, 3.0])), torch.tensor([-(lo + hi), 3.0]))


def test_rrelu_noise_scale_shrinks_spread():
    unit = seeded("rrelu", lower=0.1, upper=0.3)
    activations.set_noise_scale(unit, 0.5)
    slope = -unit(-torch.ones(100_000, dtype=torch.float64))
    assert slope.min() >= 0.15 and slope.max() <= 0.25
    std = unit.effective_noise_std(torch.tensor([-2.0, 1.0]))
    torch.testing.assert_close(std, torch.tensor([2 * 0.1 / math.sqrt(12), 0.0]))


def test_rrelu_params_and_gradcheck():
    with pytest.raises(activations.ParamError) as err:
        activations.create("rrelu", lower=0.5, upper=0.2)
    assert err.value.param == "upper"
    assert gradcheck_unit(seeded("rrelu"), away_from(torch.randn(30), (0.0,)))


def test_gaussian_dropout_moments_eval_and_gradcheck():
    unit = seeded("gaussian_dropout", p=0.2)
    m = unit(torch.ones(1_000_000, dtype=torch.float64))
    assert abs(m.mean().item() - 1) < 3e-3 * 0.5
    assert m.var().item() == pytest.approx(0.25, rel=0.01)
    x = torch.randn(10)
    assert torch.equal(unit.eval()(x), x)
    assert gradcheck_unit(unit.train(), torch.randn(20))


def test_gaussian_dropout_p_is_open_interval():
    for bad in (0.0, 1.0):
        with pytest.raises(activations.ParamError, match="'p'"):
            activations.create("gaussian_dropout", p=bad)
