"""The CPU block kernels against the whole-tensor eager formulas, and thread-count independence."""

import pytest
import torch

import activations
from activations import blocks, gulcehre, noise

UNITS = [("noisy_hard_tanh", "normal"), ("noisy_hard_sigmoid", "half_normal")]
# Sizes that span several blocks and several pool tasks, with ragged ends.
SHAPES = [(3 * blocks.BLOCK + 7,), (130, 7, 97), (2, 5 * blocks.BLOCK + 1)]


def eager(unit, x, p, xi, grad):
    """phi and its gradients by the unblocked eager ops (the reference)."""
    s = unit._setting()
    mix, d, sig, _ = gulcehre._parts(x, p, s)
    grad_x, grad_p = gulcehre._eager_backward(x, p, s, xi, grad)
    return xi * sig * d + mix, grad_x, grad_p


def blocked(unit, x, p, grad, seed):
    """phi and its gradients through the unit's autograd function, noise from ``seed``."""
    xx, pp = x.clone().requires_grad_(True), p.clone().requires_grad_(True)
    fn = gulcehre._NoisyHardFn
    y = fn.apply(xx, pp, unit._setting(), torch.Generator().manual_seed(seed))
    y.backward(grad)
    return y.detach(), xx.grad, pp.grad


@pytest.mark.parametrize(("name", "kind"), UNITS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_blocks_match_the_eager_formulas(name, kind, shape, dtype):
    torch.manual_seed(0)
    x = (torch.randn(shape) * 3).to(dtype)
    channels = shape[1] if len(shape) > 1 else 1
    unit = activations.create(name, num_units=channels if channels > 1 else None)
    # Some learned slopes negative or zero: the kernels use |p| and sgn(p).
    p = torch.linspace(-1.5, 2.5, channels).to(dtype)
    p = p.view(1, -1, *([1] * (len(shape) - 2))) if channels > 1 else p.reshape(())
    grad = torch.randn(shape, dtype=dtype)
    xi = noise.sample(kind, x, torch.Generator().manual_seed(3))
    want = eager(unit, x, p, xi, grad)
    got = blocked(unit, x, p, grad, seed=3)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {}
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b.reshape(a.shape), **tol)


@pytest.mark.parametrize(
    "name", ["noisy_hard_tanh", "noisy_hard_sigmoid", "nrelu", "nanis_hard_tanh"]
)
def test_results_do_not_depend_on_the_thread_count(name):
    x = torch.randn(64, 4 * noise.CHUNK // 64) * 3
    grad = torch.randn_like(x)

    def run():
        unit = activations.create(name, generator=torch.Generator().manual_seed(11))
        xx = x.clone().requires_grad_(True)
        unit(xx).backward(grad)
        grads = [q.grad for q in unit.parameters()]
        return [unit(x).detach(), xx.grad, *grads]

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        noise._pool = None
        many = run()
        torch.set_num_threads(1)
        noise._pool = None
        one = run()
    finally:
        torch.set_num_threads(threads)
        noise._pool = None
    for a, b in zip(many, one, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])  # float32: the native kernel
def test_nrelu_blocks_match_the_eager_formula(dtype):
    x = torch.randn(2, 3 * blocks.BLOCK + 5, dtype=dtype) * 2
    grad = torch.randn_like(x)
    unit = activations.create("nrelu", scale=0.7, generator=torch.Generator().manual_seed(4))
    xx = x.clone().requires_grad_(True)
    y = unit(xx)
    y.backward(grad)
    z = noise.sample("gaussian", x, torch.Generator().manual_seed(4))
    s = torch.sigmoid(x)
    pre = x + 0.7 * s.sqrt() * z
    tol = {} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-5}
    torch.testing.assert_close(y.detach(), pre.clamp(min=0), **tol)
    # float32: the kernel's own mask (at pre = 0 rounding may go either way).
    active = (pre > 0) if dtype == torch.float64 else (y.detach() > 0)
    dstd = s.sqrt() * (1 - s) * 0.35
    torch.testing.assert_close(xx.grad, grad * active * (1 + z * dstd), **tol)


@pytest.mark.parametrize("name", ["nani_hard_sigmoid", "nanis_hard_tanh", "nanis_relu"])
def test_input_noise_blocks_match_autograd_through_the_eager_ops(name):
    x = torch.randn(3 * blocks.BLOCK + 5, dtype=torch.float64) * 3
    grad = torch.randn_like(x)
    unit = activations.create(name, generator=torch.Generator().manual_seed(6))
    xx = x.clone().requires_grad_(True)
    y = unit(xx)
    y.backward(grad)
    cls = type(unit)
    ref_x = x.clone().requires_grad_(True)
    xi = noise.sample("gaussian", x, torch.Generator().manual_seed(6), scale=unit.c)
    if cls.only_saturated:
        xi = xi * cls.saturated(x)
    ref = cls.hard(ref_x + xi)
    ref.backward(grad)
    torch.testing.assert_close(y.detach(), ref.detach())
    torch.testing.assert_close(xx.grad, ref_x.grad)


@pytest.mark.parametrize("name", ["noisy_hard_tanh", "noisy_hard_sigmoid"])
def test_nothing_saturated_draws_no_noise_and_keeps_the_linear_slope(name):
    gen = torch.Generator().manual_seed(9)
    unit = activations.create(name, num_units=4, generator=gen)
    threshold = unit.spec.threshold
    x = (torch.rand(50, 4, dtype=torch.float64) * 2 - 1) * threshold * 0.999
    x.requires_grad_(True)
    state = gen.get_state()
    y = unit(x)
    assert torch.equal(gen.get_state(), state)  # no draw: sigma is 0 everywhere
    torch.testing.assert_close(y, unit.spec.linear(x.detach()))
    y.backward(torch.ones_like(y))
    torch.testing.assert_close(x.grad, torch.full_like(x, unit.spec.slope))
    assert torch.equal(unit.p.grad, torch.zeros(4))
    # One saturated element and the noise is drawn again.
    x2 = x.detach().clone()
    x2[0, 0] = threshold * 1.5
    unit(x2)
    assert not torch.equal(gen.get_state(), state)
