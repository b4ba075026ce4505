"""Noisy hard tanh / hard sigmoid (Gulcehre et al. 2016): formulas, eval, gradients."""

import math

import pytest
import torch
from act_helpers import away_from, gradcheck_unit
from scipy import stats

import activations
from activations.diagnostics import saved_bytes

X = torch.tensor([-3.0, -1.5, -0.5, 0.3, 0.9, 1.7, 2.5, 4.0], dtype=torch.float64)
HALF = math.sqrt(2 / math.pi)


def sig(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def reference(name: str, x: float, xi: float, alpha: float, c: float, p: float = 1.0) -> float:
    """The paper's phi written out with python floats."""
    if name == "noisy_hard_tanh":
        u = x
        h = min(max(x, -1.0), 1.0)
    else:
        u = 0.25 * x + 0.5
        h = min(max(u, 0.0), 1.0)
    sgn = (x > 0) - (x < 0)
    d = -sgn * ((1 - alpha > 0) - (1 - alpha < 0))
    sigma = c * (sig(p * (h - u)) - 0.5) ** 2
    return alpha * h + (1 - alpha) * u + d * sigma * xi


CASES = [
    ("noisy_hard_tanh", 1.15, 0.5, "normal"),
    ("noisy_hard_sigmoid", 1.1, 0.15, "half_normal"),
]


def seeded(name, seed=0, **params):
    gen = torch.Generator().manual_seed(seed)
    return activations.create(name, generator=gen, **params)


@pytest.mark.parametrize(("name", "alpha", "c", "kind"), CASES)
def test_defaults_and_eval_is_the_expectation_formula(name, alpha, c, kind):
    unit = seeded(name).eval()
    assert (unit.alpha, unit.c, unit.noise) == (alpha, c, kind)
    mean = HALF if kind == "half_normal" else 0.0
    expected = [reference(name, v, mean, alpha, c) for v in X.tolist()]
    torch.testing.assert_close(unit(X), torch.tensor(expected, dtype=torch.float64))
    assert torch.equal(unit(X), unit(X))


@pytest.mark.parametrize(("name", "alpha", "c", "kind"), CASES)
def test_training_output_matches_formula_with_seeded_xi(name, alpha, c, kind):
    unit = seeded(name, seed=5)
    y = unit(X)
    xi = torch.empty_like(X).normal_(generator=torch.Generator().manual_seed(5))
    if kind == "half_normal":
        xi = xi.abs()
    expected = [
        reference(name, v, e, alpha, c) for v, e in zip(X.tolist(), xi.tolist(), strict=True)
    ]
    torch.testing.assert_close(y, torch.tensor(expected, dtype=torch.float64))


def test_hard_sigmoid_uses_quarter_slope_and_x_sign():
    unit = seeded("noisy_hard_sigmoid", c=0.0).eval()
    # c = 0: alpha*h + (1-alpha)*u; in the linear region that is 0.25x + 0.5 exactly.
    torch.testing.assert_close(unit(torch.tensor([1.0])), torch.tensor([0.75]))
    y = unit(torch.tensor([4.0]))  # h = 1, u = 1.5
    torch.testing.assert_close(y, torch.tensor([1.1 * 1 - 0.1 * 1.5]))


@pytest.mark.parametrize(("name", "alpha", "c", "kind"), CASES)
def test_mean_of_training_samples_is_eval_output(name, alpha, c, kind):
    unit = seeded(name, num_units=len(X))
    with torch.no_grad():
        unit.p.copy_(torch.linspace(0.5, 3.0, len(X)))
    batch = X.expand(200_000, -1)
    y = unit(batch)
    unit.eval()
    expect = unit(X)
    std = unit.effective_noise_std(X)
    tol = 5 * std / math.sqrt(batch.shape[0]) + 1e-12
    assert ((y.mean(0) - expect).abs() <= tol).all()
    torch.testing.assert_close(y.std(0), std, rtol=0.02, atol=1e-12)


def test_half_normal_noise_distribution():
    unit = seeded("noisy_hard_sigmoid")
    x = torch.full((200_000,), 5.0, dtype=torch.float64)
    y = unit(x)
    unit_c0 = seeded("noisy_hard_sigmoid", c=0.0)
    scale = (unit.effective_noise_std(x) / math.sqrt(1 - 2 / math.pi))[0]
    xi = ((y - unit_c0(x)) / scale).detach()  # d = -sgn(x) sgn(1 - 1.1) = +1 here
    assert (xi >= 0).all()
    assert stats.kstest(xi.numpy(), stats.halfnorm.cdf).pvalue > 1e-3


def test_linear_region_has_no_noise():
    unit = seeded("noisy_hard_tanh")
    x = torch.linspace(-0.99, 0.99, 101, dtype=torch.float64)
    torch.testing.assert_close(unit(x), x)  # alpha*x + (1-alpha)*x
    assert (unit.effective_noise_std(x) == 0).all()


@pytest.mark.parametrize("name", ["noisy_hard_tanh", "noisy_hard_sigmoid"])
@pytest.mark.parametrize("kind", ["normal", "half_normal"])
def test_gradcheck_x_and_p(name, kind):
    unit = seeded(name, noise=kind, num_units=6)
    with torch.no_grad():
        unit.p.copy_(torch.linspace(0.5, 2.0, 6))
    x = away_from(torch.randn(5, 6) * 3, (-2.0, -1.0, 0.0, 1.0, 2.0))
    assert gradcheck_unit(unit, x)
    assert gradcheck_unit(unit.eval(), x)


def test_saves_x_and_p_only():
    unit = seeded("noisy_hard_tanh", num_units=16)
    x = torch.randn(64, 16, requires_grad=True)
    assert saved_bytes(unit, x) == x.numel() * 4 + 16 * 4


def test_noise_scale_zero_equals_eval_and_scales_noise():
    unit = seeded("noisy_hard_tanh")
    activations.set_noise_scale(unit, 0.0)
    torch.testing.assert_close(unit(X), unit.eval()(X))
    unit.train()
    activations.set_noise_scale(unit, 0.5)
    full = seeded("noisy_hard_tanh", c=0.25)
    torch.testing.assert_close(unit.effective_noise_std(X), full.effective_noise_std(X))


def test_saturation_mask():
    mask = seeded("noisy_hard_sigmoid").saturation_mask(X)
    assert mask.tolist() == [True, False, False, False, False, False, True, True]


def test_nan_nah_aliases_give_the_noise_they_name():
    # An alias that names NAN (normal) or NAH (half-normal) noise must build exactly that.
    for name in ("noisy_hard_tanh", "noisy_hard_sigmoid"):
        for alias in activations.registry.entry(name).aliases:
            unit = activations.create(alias)
            if alias.startswith("nan_"):
                assert unit.noise == "normal", alias
            if alias.startswith("nah_"):
                assert unit.noise == "half_normal", alias
