"""The fused CUDA NoisyReLU kernel: same law, same gradient, same memory as the eager path.

These run only where CUDA and Triton are present (a GPU box); CPU CI skips them.
"""

import math

import pytest
import torch
from act_helpers import lag1_corr
from scipy import stats

import activations
from activations import fused
from activations.diagnostics import saved_bytes

# On a GPU the kernels run compiled; elsewhere, with TRITON_INTERPRET=1 and Triton
# installed, the same tests run them through Triton's interpreter on CPU tensors.
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
pytestmark = pytest.mark.skipif(
    fused.triton is None or (DEVICE == "cpu" and not fused.INTERPRET),
    reason="needs Triton, and CUDA or TRITON_INTERPRET=1",
)

N = 4_000_000 if DEVICE == "cuda" else 2_000_000  # the interpreter is slow
SIGMA = 0.2
CDFS = {
    "gaussian": stats.norm(scale=SIGMA).cdf,
    "laplace": stats.laplace(scale=SIGMA / math.sqrt(2)).cdf,
    "uniform": stats.uniform(loc=-SIGMA * math.sqrt(3), scale=2 * SIGMA * math.sqrt(3)).cdf,
}


def unit_on_device(seed: int = 0, **params):
    gen = torch.Generator(device=DEVICE).manual_seed(seed)
    return activations.create("noisy_relu", generator=gen, **params).to(DEVICE).train()


@pytest.mark.parametrize("dist", sorted(CDFS))
def test_fused_noise_moments_and_distribution(dist):
    unit = unit_on_device(sigma=SIGMA, distribution=dist)
    x = torch.linspace(-1, 1, N, device=DEVICE)
    assert fused.available(x, dist)
    eps = (unit(x) - x.relu()).double()
    assert abs(eps.mean().item()) < 3e-3 * SIGMA
    assert eps.var().item() == pytest.approx(SIGMA**2, rel=0.01)
    assert abs(lag1_corr(eps)) < 3e-3
    # Neighbouring kernel blocks must not repeat each other's draws.
    blocks = eps[: 2 * fused._BLOCK].view(2, -1)
    assert not torch.allclose(blocks[0], blocks[1])
    assert stats.kstest(eps[:200_000].cpu().numpy(), CDFS[dist]).pvalue > 1e-3


def test_fused_gradient_is_the_relu_mask():
    unit = unit_on_device(sigma=0.5)
    x = torch.randn(1_000_003, device=DEVICE, requires_grad=True)  # not a block multiple
    grad = torch.randn_like(x)
    unit(x).backward(grad)
    assert torch.equal(x.grad, grad * (x.detach() > 0))


def test_fused_saves_one_byte_per_element():
    unit = unit_on_device()
    x = torch.randn(1 << 20, device=DEVICE, requires_grad=True)
    assert saved_bytes(unit, x) == x.numel()


def test_fused_is_reproducible_from_the_generator():
    x = torch.randn(100_000, device=DEVICE)
    first, second = unit_on_device(seed=3)(x), unit_on_device(seed=3)(x)
    assert torch.equal(first, second)
    assert not torch.equal(first, unit_on_device(seed=4)(x))
    torch.manual_seed(7)
    a = activations.create("noisy_relu").to(DEVICE)(x)
    torch.manual_seed(7)
    assert torch.equal(a, activations.create("noisy_relu").to(DEVICE)(x))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_fused_follows_dtype_and_shape(dtype):
    x = torch.randn(8, 33, 17, device=DEVICE, dtype=dtype)
    y = unit_on_device(sigma=0.3)(x)
    assert y.dtype == dtype and y.shape == x.shape and y.device == x.device
    eps = (y.float() - x.float().relu()).flatten()
    assert eps.std().item() == pytest.approx(0.3, rel=0.15)


def test_fused_matches_eager_in_law_and_eval():
    x = torch.randn(N, device=DEVICE)
    fused_unit, eager_unit = unit_on_device(seed=1, sigma=0.3), unit_on_device(seed=1, sigma=0.3)
    eager_unit.use_fused = False
    a, b = (fused_unit(x) - x.relu()).double(), (eager_unit(x) - x.relu()).double()
    assert stats.ks_2samp(a[:200_000].cpu().numpy(), b[:200_000].cpu().numpy()).pvalue > 1e-3
    assert torch.equal(fused_unit.eval()(x), x.relu())
    activations.set_noise_scale(fused_unit.train(), 0.0)
    assert torch.equal(fused_unit(x), x.relu())


def test_fused_trains_a_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(20, 64), activations.create("noisy_relu", sigma=0.1), torch.nn.Linear(64, 2)
    ).to(DEVICE)
    x = torch.randn(512, 20, device=DEVICE)
    target = (x[:, 0] > 0).long()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200 if DEVICE == "cuda" else 100):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), target)
        loss.backward()
        opt.step()
    model.eval()
    accuracy = (model(x).argmax(1) == target).float().mean().item()
    assert accuracy > 0.95


# -- Gulcehre et al.'s noisy hard units ------------------------------------------------------


def _phi(unit, x, p, xi):
    """phi(x, xi) of SCIENCE.md in closed form, for reference gradients."""
    spec, alpha, c = unit.spec, unit.alpha, unit.c * unit.noise_scale
    u = x * spec.slope + spec.offset
    h = u.clamp(spec.lo, 1.0)
    delta = h - u
    sig = c * (torch.sigmoid(p * delta) - 0.5) ** 2
    d = -torch.sign(x) * math.copysign(1.0, 1.0 - alpha)
    return alpha * h + (1 - alpha) * u + d * sig * xi, d * sig


@pytest.mark.parametrize(
    ("name", "noise", "shape"),
    [
        ("noisy_hard_tanh", "normal", (4096, 64)),
        ("noisy_hard_sigmoid", "half_normal", (4096, 64)),
        ("noisy_hard_tanh", "half_normal", (512, 16, 33)),  # a conv layer: channels on dim 1
    ],
)
def test_fused_hard_units_noise_family_and_gradients(name, noise, shape):
    gen = torch.Generator(device=DEVICE).manual_seed(0)
    channels = shape[1]
    unit = activations.create(name, noise=noise, num_units=channels, generator=gen).to(DEVICE)
    unit.use_fused = True  # opt-in until it has run compiled on a GPU
    with torch.no_grad():
        unit.p.copy_(torch.linspace(0.5, 2.0, channels))  # a wrong channel index would show
    # Inputs either in the linear regime (no noise, no noise gradient) or well past the
    # threshold, where the noise the kernel drew can be read back from y accurately.
    thr = unit.spec.threshold
    inner = torch.rand(shape, device=DEVICE) * 0.9 * thr
    outer = (torch.rand(shape, device=DEVICE) * 2 + 3) * thr
    pick = torch.rand(shape, device=DEVICE) < 0.5
    sign = torch.where(torch.rand(shape, device=DEVICE) < 0.5, -1.0, 1.0)
    x = (torch.where(pick, inner, outer) * sign).requires_grad_(True)
    y = unit(x)
    grad = torch.randn_like(y)
    gx, gp = torch.autograd.grad(y, (x, unit.p), grad)
    assert fused.hard_available(x, unit.p, noise)

    # Recover the noise the kernel drew where it has an effect, and check its family.
    p_view = unit.p.detach().double().view(1, -1, *([1] * (len(shape) - 2)))
    mix, scale = _phi(unit, x.detach().double(), p_view, 0.0)
    live = scale.abs() > 0
    assert scale.abs()[live].min().item() > 1e-3
    xi = torch.where(live, (y.double() - mix) / torch.where(live, scale, 1.0), 0.0)
    sample = xi[live]
    mean, std = (
        (0.0, 1.0) if noise == "normal" else (math.sqrt(2 / math.pi), math.sqrt(1 - 2 / math.pi))
    )
    assert sample.numel() > 50_000
    assert sample.mean().item() == pytest.approx(mean, abs=0.01)
    assert sample.std().item() == pytest.approx(std, rel=0.01)

    # Gradients: the closed form with that noise held fixed, differentiated by autograd.
    xd = x.detach().double().requires_grad_(True)
    pd = unit.p.detach().double().requires_grad_(True)
    ref, _ = _phi(unit, xd, pd.view_as(p_view), xi)
    rx, rp = torch.autograd.grad(ref, (xd, pd), grad.double())
    torch.testing.assert_close(gx.double(), rx, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(gp.double(), rp, rtol=1e-3, atol=1e-2)


def test_fused_hard_unit_reproducible_cheap_and_eval_is_the_expectation():
    x = torch.randn(256, 32, device=DEVICE, requires_grad=True) * 3

    def run(seed):
        gen = torch.Generator(device=DEVICE).manual_seed(seed)
        unit = activations.create("noisy_hard_sigmoid", num_units=32, generator=gen).to(DEVICE)
        unit.use_fused = True
        return unit, unit(x)

    unit, first = run(5)
    assert torch.equal(first, run(5)[1]) and not torch.equal(first, run(6)[1])
    assert saved_bytes(unit, x) <= x.numel() * 4 + 4 * 32 + 64  # x, p and a seed: no noise
    # Eval: the expectation over xi, on the fused and the eager path alike.
    eager = activations.create("noisy_hard_sigmoid", num_units=32).to(DEVICE)
    repeat = 400 if DEVICE == "cuda" else 100
    many = x.detach().repeat(repeat, 1)
    torch.testing.assert_close(
        unit(many).view(repeat, 256, 32).mean(0), unit.eval()(x.detach()), rtol=0, atol=0.02
    )
    torch.testing.assert_close(unit(x.detach()), eager.eval()(x.detach()))
