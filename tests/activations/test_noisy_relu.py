"""NoisyReLU and NReLU: exact values, moments, gradients, saved memory."""

import math

import pytest
import torch
from act_helpers import away_from, gradcheck_unit, lag1_corr
from scipy import stats

import activations
from activations.diagnostics import saved_bytes

X = torch.tensor([-2.0, -0.5, 0.0, 0.25, 3.0], dtype=torch.float64)


def seeded(name: str, seed: int = 0, **params):
    gen = torch.Generator().manual_seed(seed)
    return activations.create(name, generator=gen, **params), gen


def test_noisy_relu_exact_values_with_seeded_noise():
    unit, _ = seeded("noisy_relu", sigma=0.3)
    y = unit(X)
    eps = torch.empty_like(X).normal_(0.0, 0.3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(y, X.clamp(min=0) + eps, rtol=0, atol=1e-15)


def test_noisy_relu_eval_is_relu_and_deterministic():
    unit, _ = seeded("noisy_relu", sigma=0.5)
    unit.eval()
    assert torch.equal(unit(X), torch.tensor([0.0, 0.0, 0.0, 0.25, 3.0], dtype=torch.float64))


def test_noise_scale_zero_gives_relu():
    unit, _ = seeded("noisy_relu", sigma=0.5)
    assert activations.set_noise_scale(unit, 0.0) == 1
    assert torch.equal(unit(X), X.relu())


@pytest.mark.parametrize(
    ("dist", "cdf"),
    [
        ("gaussian", stats.norm(scale=0.2).cdf),
        ("laplace", stats.laplace(scale=0.2 / math.sqrt(2)).cdf),
        ("uniform", stats.uniform(loc=-0.2 * math.sqrt(3), scale=0.4 * math.sqrt(3)).cdf),
    ],
)
def test_noise_moments_and_distribution(dist, cdf):
    sigma = 0.4
    unit, _ = seeded("noisy_relu", sigma=sigma, distribution=dist)
    activations.set_noise_scale(unit, 0.5)  # effective sigma 0.2
    x = torch.linspace(-1, 1, 1_000_000, dtype=torch.float64)
    eps = unit(x) - x.relu()
    assert abs(eps.mean().item()) < 3e-3 * 0.2
    assert eps.var().item() == pytest.approx(0.04, rel=0.01)
    assert abs(lag1_corr(eps)) < 4e-3
    assert stats.kstest(eps[:200_000].numpy(), cdf).pvalue > 1e-3
    assert unit.effective_noise_std(x) == pytest.approx(0.2)


def test_generator_makes_runs_reproducible():
    a, _ = seeded("noisy_relu", seed=3)
    b, _ = seeded("noisy_relu", seed=3)
    c, _ = seeded("noisy_relu", seed=4)
    x = torch.randn(100)
    ya, yb, yc = a(x), b(x), c(x)
    assert torch.equal(ya, yb)
    assert not torch.equal(ya, yc)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_output_follows_dtype(dtype):
    unit, _ = seeded("noisy_relu")
    x = torch.randn(1000).to(dtype).requires_grad_(True)
    y = unit(x)
    y.sum().backward()
    assert y.dtype == dtype and x.grad is not None and x.grad.dtype == dtype
    assert (y - x.relu()).abs().max() > 0


def test_gradient_is_relu_mask_and_gradchecks():
    unit, _ = seeded("noisy_relu", sigma=0.3)
    x = torch.randn(50, dtype=torch.float64).requires_grad_(True)
    unit(x).backward(torch.full_like(x, 2.0))
    assert torch.equal(x.grad, 2.0 * (x > 0).double())
    assert gradcheck_unit(unit, away_from(torch.randn(40), (0.0,)))


def test_saves_one_byte_per_element():
    unit, _ = seeded("noisy_relu")
    x = torch.randn(4096, requires_grad=True)
    assert saved_bytes(unit, x) == x.numel()


def test_learned_sigma_per_channel():
    unit, _ = seeded("noisy_relu", sigma=0.3, learn_sigma=True, num_channels=3)
    torch.testing.assert_close(unit.learned_sigma(), torch.full((3,), 0.3))
    x = torch.randn(8, 3, 5, requires_grad=True)
    y = unit(x)
    # Saved: the bool mask plus per-channel sigma tensors (softplus input, sigma), never the noise.
    assert saved_bytes(unit, x) == x.numel() + 2 * 3 * 4
    assert unit.effective_noise_std(x).shape == x.shape
    y.sum().backward()
    assert unit.raw_sigma.grad is not None and unit.raw_sigma.grad.shape == (3,)


def test_learned_sigma_gradient_matches_explicit_noise():
    unit, _ = seeded("noisy_relu", sigma=0.5, learn_sigma=True, num_channels=2)
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    w = torch.randn_like(x)
    (unit.double()(x) * w).sum().backward()
    eps = torch.empty_like(x).normal_(generator=torch.Generator().manual_seed(0))
    sig_grad = (w * eps).sum(dim=(0, 2))
    expected = sig_grad * torch.sigmoid(unit.raw_sigma.detach())  # d softplus = sigmoid
    torch.testing.assert_close(unit.raw_sigma.grad, expected)
    assert gradcheck_unit(unit, away_from(torch.randn(3, 2, 4), (0.0,)))


def test_learned_sigma_param_checks():
    with pytest.raises(activations.ParamError) as err:
        activations.create("noisy_relu", learn_sigma=True)
    assert err.value.param == "num_channels"
    # A spec may leave it out: the model builder gives the layer width.
    assert activations.validate_params("noisy_relu", {"learn_sigma": True})["learn_sigma"]
    with pytest.raises(activations.ParamError) as err:
        activations.create("noisy_relu", sigma=0.0, learn_sigma=True, num_channels=2)
    assert err.value.param == "sigma"


def test_nrelu_exact_values_and_eval():
    unit, _ = seeded("nrelu", scale=0.5)
    y = unit(X)
    z = torch.empty_like(X).normal_(generator=torch.Generator().manual_seed(0))
    expected = (X + 0.5 * torch.sigmoid(X).sqrt() * z).clamp(min=0)
    torch.testing.assert_close(y, expected)
    unit.eval()
    assert torch.equal(unit(X), X.relu())
    torch.testing.assert_close(unit.effective_noise_std(X), 0.5 * torch.sigmoid(X).sqrt())


def test_nrelu_moments_at_zero():
    # x = 0: y = max(0, e), e ~ N(0, sigmoid(0) = 1/2).
    unit, _ = seeded("nrelu")
    y = unit(torch.zeros(1_000_000, dtype=torch.float64))
    s = math.sqrt(0.5)
    assert y.mean().item() == pytest.approx(s / math.sqrt(2 * math.pi), rel=0.01)
    assert y.var().item() == pytest.approx(s**2 / 2 - s**2 / (2 * math.pi), rel=0.01)


def test_nrelu_gradcheck_and_memory():
    unit, _ = seeded("nrelu")
    assert gradcheck_unit(unit, torch.randn(40) * 2)
    x = torch.randn(1000, requires_grad=True)
    assert saved_bytes(unit, x) == x.numel() * 4  # x only; z is regenerated
