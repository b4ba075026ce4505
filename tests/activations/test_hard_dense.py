"""The small-tensor CPU path of the Gulcehre units (``hard_dense``): formulas, memory, layouts."""

import pytest
import torch
from act_helpers import away_from, gradcheck_unit
from test_hard_sparse import sparse_input

import activations
from activations import blocks, gulcehre, hard_dense, hard_sparse, noise
from activations.diagnostics import saved_bytes

UNITS = [("noisy_hard_tanh", "normal"), ("noisy_hard_sigmoid", "half_normal")]


def path_noise(kind, x, spec, seed):
    """The xi the path draws from ``seed``: n values at the saturated elements (at most a
    quarter saturated), else one value per element."""
    idx = hard_sparse.saturated_index(x, spec)
    gen = torch.Generator().manual_seed(seed)
    if 4 * idx.numel() > x.numel():
        return noise.sample(kind, x, gen)
    draws = noise.sample(kind, x.new_empty(idx.numel()), gen)
    return torch.zeros_like(x).view(-1).index_copy_(0, idx, draws).view(x.shape)


def test_the_n_draws_hold_up_to_a_quarter_saturated():
    assert hard_dense.draws_saturated_only(25, 100)
    assert not hard_dense.draws_saturated_only(26, 100)
    assert hard_dense.draws_saturated_only(0, 100)


def run_fn(unit, x, p, grad, seed):
    xx, pp = x.clone().requires_grad_(True), p.clone().requires_grad_(True)
    y = gulcehre._NoisyHardFn.apply(xx, pp, unit._setting(), torch.Generator().manual_seed(seed))
    y.backward(grad)
    return y.detach(), xx.grad, pp.grad


@pytest.mark.parametrize(("name", "kind"), UNITS)
@pytest.mark.parametrize("every", [20, 5, 2])  # 5%, 20%: the n draws; 50%: the full draw
@pytest.mark.parametrize(
    ("shape", "p_shape"),
    [((64, 48), (48,)), ((64, 48), (1, 48)), ((10, 6, 7), (1, 6, 1)), ((30, 9), ())],
)
def test_small_path_matches_the_eager_formulas(name, kind, every, shape, p_shape):
    unit = activations.create(name)
    x = sparse_input(shape, unit.spec.threshold, every=every)
    assert x.numel() < blocks.WHOLE
    n = p_shape[1] if len(p_shape) > 1 else (p_shape[0] if p_shape else 1)
    p = torch.linspace(-1.5, 2.5, n, dtype=x.dtype).reshape(p_shape)  # negative slopes too
    grad = torch.randn(shape, dtype=x.dtype)
    s = unit._setting()
    xi = path_noise(kind, x, unit.spec, seed=3)
    mix, d, sig, _ = gulcehre._parts(x, p, s)
    want = (xi * sig * d + mix, *gulcehre._eager_backward(x, p, s, xi, grad))
    for a, b in zip(run_fn(unit, x, p, grad, seed=3), want, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(("name", "kind"), UNITS)
def test_a_column_slice_gives_what_its_contiguous_copy_gives(name, kind):
    unit = activations.create(name, num_units=48)
    wide = sparse_input((64, 64), unit.spec.threshold, every=20)
    x = wide[:, :48]  # an LSTM's gate pre-activations: a strided view
    assert not x.is_contiguous()
    p, grad = torch.linspace(-1.0, 2.0, 48, dtype=x.dtype), torch.randn(64, 48, dtype=x.dtype)
    for a, b in zip(
        run_fn(unit, x, p, grad, seed=5), run_fn(unit, x.contiguous(), p, grad, seed=5), strict=True
    ):
        assert torch.equal(a, b)


@pytest.mark.parametrize("every", [20, 5, 3])  # 5%, 20%: n draws; 33%: the full draw
def test_memory_x_and_p_or_with_r_where_only_the_saturated_drew(every):
    unit = activations.create("noisy_hard_tanh", num_units=48)
    x = sparse_input((64, 48), 1.0, every=every, dtype=torch.float32).requires_grad_(True)
    # A full draw is redrawn in backward: softshrink(x) and p, as x and p elsewhere. Where only
    # the saturated elements drew (at most a quarter), r (which holds xi) is kept as well.
    extra = x.numel() * 4 if every >= 4 else 0
    assert saved_bytes(unit, x) == x.numel() * 4 + 48 * 4 + extra


@pytest.mark.parametrize("every", [20, 2])
def test_backward_twice_with_retain_graph_gives_the_same_gradients(every):
    unit = activations.create("noisy_hard_sigmoid", num_units=48)
    x = sparse_input((64, 48), 2.0, every=every).requires_grad_(True)
    y = unit(x)
    grad = torch.randn_like(y)
    first = torch.autograd.grad(y, (x, unit.p), grad, retain_graph=True)
    second = torch.autograd.grad(y, (x, unit.p), grad)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("name", "kind"), UNITS)
@pytest.mark.parametrize("every", [10, 2])
@pytest.mark.parametrize("num_units", [3, None])
def test_gradcheck_conv_shape_and_scalar_p(name, kind, every, num_units):
    unit = activations.create(
        name, noise=kind, num_units=num_units, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        unit.p.copy_(torch.linspace(0.5, 2.0, 3) if num_units else torch.tensor(1.3))
    t = unit.spec.threshold
    x = away_from(sparse_input((8, 3, 5), t, every=every), (-2 * t, -t, 0.0, t, 2 * t))
    assert gradcheck_unit(unit, x)
