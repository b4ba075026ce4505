"""The saturated-only CPU path of the Gulcehre units (small tensors, at most 1/4 saturated)."""

import math

import pytest
import torch
from act_helpers import away_from, gradcheck_unit
from scipy import stats

import activations
from activations import blocks, gulcehre, hard_sparse, noise

UNITS = [("noisy_hard_tanh", "normal"), ("noisy_hard_sigmoid", "half_normal")]


def sparse_input(shape, threshold, every=20, seed=0, dtype=torch.float64):
    """Inputs in the linear region but for every ``every``-th element, which is saturated."""
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(shape, generator=gen, dtype=dtype) * 2 - 1) * threshold * 0.95
    flat = x.view(-1)
    sat = torch.rand(flat[::every].shape, generator=gen, dtype=dtype) * 3 + 1.05
    sign = torch.where(torch.arange(sat.numel()) % 2 == 0, 1.0, -1.0).to(dtype)
    flat[::every] = sat * sign * threshold
    return x


def through_fn(unit, x, p, grad, seed):
    xx, pp = x.clone().requires_grad_(True), p.clone().requires_grad_(True)
    y = gulcehre._NoisyHardFn.apply(xx, pp, unit._setting(), torch.Generator().manual_seed(seed))
    y.backward(grad)
    return y.detach(), xx.grad, pp.grad


@pytest.mark.parametrize(("name", "kind"), UNITS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_path_matches_the_eager_formulas_with_its_draws(name, kind, dtype):
    unit = activations.create(name, num_units=48)
    x = sparse_input((64, 48), unit.spec.threshold, dtype=dtype)
    idx = hard_sparse.saturated_index(x, unit.spec)
    assert gulcehre._sparse_index(x, unit.spec) is not None  # this input takes the path
    p = torch.linspace(-1.5, 2.5, 48, dtype=dtype).view(1, -1)  # negative and zero slopes too
    grad = torch.randn(x.shape, dtype=dtype)
    # The path draws n values, one per saturated element in row-major order; 0 elsewhere.
    draws = noise.sample(kind, x.new_empty(idx.numel()), torch.Generator().manual_seed(3))
    xi = torch.zeros_like(x).view(-1).index_copy_(0, idx, draws).view(x.shape)
    s = unit._setting()
    mix, d, sig, _ = gulcehre._parts(x, p, s)
    want = (xi * sig * d + mix, *gulcehre._eager_backward(x, p, s, xi, grad))
    got = through_fn(unit, x, p, grad, seed=3)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {}
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b.reshape(a.shape), **tol)


@pytest.mark.parametrize(("name", "kind"), UNITS)
def test_sparse_path_noise_moments_on_the_saturated_elements(name, kind):
    gen = torch.Generator().manual_seed(1)
    unit = activations.create(name, num_units=16, generator=gen)
    x = torch.zeros(4000, 16, dtype=torch.float64)  # 64,000 elements: a small tensor
    x[:, 0] = 2.5 * unit.spec.threshold  # one unit in 16 saturated
    x[:, 1:] = torch.linspace(-0.9, 0.9, 15, dtype=torch.float64) * unit.spec.threshold
    assert gulcehre._sparse_index(x, unit.spec) is not None
    with torch.no_grad():
        ys = torch.cat([unit(x) for _ in range(10)])
    unit.eval()
    expect, std = unit(x)[0].detach(), unit.effective_noise_std(x)[0]
    torch.testing.assert_close(ys[:, 1:], expect[1:].expand(ys.shape[0], -1))  # no noise
    sat = ys[:, 0]
    assert abs(sat.mean().item() - expect[0].item()) <= 5 * std[0].item() / math.sqrt(len(sat))
    assert sat.std().item() == pytest.approx(std[0].item(), rel=0.03)
    # The family itself: (phi - E[phi]) / sigma is xi - E[xi] (d = +1 here for both units).
    xi = (sat - expect[0]) / (std[0] / noise.std_of(kind))
    cdf = stats.norm.cdf
    if kind == "half_normal":
        xi = xi + noise.HALF_NORMAL_MEAN
        assert (xi >= -1e-9).all()
        cdf = stats.halfnorm.cdf
    assert stats.kstest(xi.numpy(), cdf).pvalue > 1e-3


def test_sparse_path_draws_one_value_per_saturated_element():
    gen = torch.Generator().manual_seed(4)
    unit = activations.create("noisy_hard_tanh", num_units=32, generator=gen)
    x = sparse_input((50, 32), 1.0, every=10)
    n = hard_sparse.saturated_index(x, unit.spec).numel()
    unit(x)
    ref = torch.Generator().manual_seed(4)
    torch.empty(n, dtype=x.dtype).normal_(generator=ref)
    assert torch.equal(gen.get_state(), ref.get_state())


@pytest.mark.parametrize("name", ["noisy_hard_tanh", "noisy_hard_sigmoid"])
@pytest.mark.parametrize("kind", ["normal", "half_normal"])
def test_sparse_path_gradcheck_x_and_p(name, kind):
    unit = activations.create(
        name, noise=kind, num_units=6, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        unit.p.copy_(torch.linspace(0.5, 2.0, 6))
    t = unit.spec.threshold
    x = away_from(sparse_input((20, 6), t, every=10), (-2 * t, -t, 0.0, t, 2 * t))
    assert gulcehre._sparse_index(x, unit.spec) is not None
    assert gradcheck_unit(unit, x)


@pytest.mark.parametrize("name", ["noisy_hard_tanh", "noisy_hard_sigmoid"])
@pytest.mark.parametrize(("shape", "every"), [((100, 384), 20), ((170, 384), 20), ((170, 384), 3)])
def test_small_tensors_do_not_depend_on_the_thread_count(name, shape, every):
    # every=20: the saturated-only path; every=3: a third saturated, one whole block (the
    # larger of these is over ATen's grain, where its sum for p is taken in row chunks).
    unit0 = activations.create(name, num_units=shape[1])
    x = sparse_input(shape, unit0.spec.threshold, every=every, dtype=torch.float32)
    assert x.numel() < blocks.WHOLE
    grad = torch.randn(shape)

    def run():
        unit = activations.create(
            name, num_units=shape[1], generator=torch.Generator().manual_seed(7)
        )
        with torch.no_grad():
            unit.p.copy_(torch.linspace(-1.0, 3.0, shape[1]))
        xx = x.clone().requires_grad_(True)
        y = unit(xx)
        y.backward(grad)
        return [y.detach(), xx.grad, unit.p.grad]

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        many = run()
        torch.set_num_threads(1)
        one = run()
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(many, one, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("name", "kind"), UNITS)
@pytest.mark.parametrize("per_channel", [True, False])
def test_sparse_path_conv_shape_and_scalar_p(name, kind, per_channel):
    # A conv layer's [batch, channels, length]: p per channel (dim 1), or one scalar p.
    unit = activations.create(name, num_units=6 if per_channel else None)
    x = sparse_input((10, 6, 7), unit.spec.threshold, every=11)
    assert gulcehre._sparse_index(x, unit.spec) is not None
    p = torch.linspace(-1, 2, 6, dtype=x.dtype).view(1, -1, 1) if per_channel else torch.tensor(1.3)
    p = p.to(x.dtype)
    idx = hard_sparse.saturated_index(x, unit.spec)
    draws = noise.sample(kind, x.new_empty(idx.numel()), torch.Generator().manual_seed(3))
    xi = torch.zeros_like(x).view(-1).index_copy_(0, idx, draws).view(x.shape)
    s, grad = unit._setting(), torch.randn_like(x)
    mix, d, sig, _ = gulcehre._parts(x, p, s)
    want = (xi * sig * d + mix, *gulcehre._eager_backward(x, p, s, xi, grad))
    for a, b in zip(through_fn(unit, x, p, grad, seed=3), want, strict=True):
        torch.testing.assert_close(a, b.reshape(a.shape))
