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

pytestmark = pytest.mark.skipif(
    fused.triton is None or not torch.cuda.is_available(), reason="needs CUDA and Triton"
)

N = 4_000_000
SIGMA = 0.2
CDFS = {
    "gaussian": stats.norm(scale=SIGMA).cdf,
    "laplace": stats.laplace(scale=SIGMA / math.sqrt(2)).cdf,
    "uniform": stats.uniform(loc=-SIGMA * math.sqrt(3), scale=2 * SIGMA * math.sqrt(3)).cdf,
}


def unit_on_cuda(seed: int = 0, **params):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    return activations.create("noisy_relu", generator=gen, **params).cuda().train()


@pytest.mark.parametrize("dist", sorted(CDFS))
def test_fused_noise_moments_and_distribution(dist):
    unit = unit_on_cuda(sigma=SIGMA, distribution=dist)
    x = torch.linspace(-1, 1, N, device="cuda")
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
    unit = unit_on_cuda(sigma=0.5)
    x = torch.randn(1_000_003, device="cuda", requires_grad=True)  # not a block multiple
    grad = torch.randn_like(x)
    unit(x).backward(grad)
    assert torch.equal(x.grad, grad * (x.detach() > 0))


def test_fused_saves_one_byte_per_element():
    unit = unit_on_cuda()
    x = torch.randn(1 << 20, device="cuda", requires_grad=True)
    assert saved_bytes(unit, x) == x.numel()


def test_fused_is_reproducible_from_the_generator():
    x = torch.randn(100_000, device="cuda")
    first, second = unit_on_cuda(seed=3)(x), unit_on_cuda(seed=3)(x)
    assert torch.equal(first, second)
    assert not torch.equal(first, unit_on_cuda(seed=4)(x))
    torch.manual_seed(7)
    a = activations.create("noisy_relu").cuda()(x)
    torch.manual_seed(7)
    assert torch.equal(a, activations.create("noisy_relu").cuda()(x))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_fused_follows_dtype_and_shape(dtype):
    x = torch.randn(8, 33, 17, device="cuda", dtype=dtype)
    y = unit_on_cuda(sigma=0.3)(x)
    assert y.dtype == dtype and y.shape == x.shape and y.device == x.device
    eps = (y.float() - x.float().relu()).flatten()
    assert eps.std().item() == pytest.approx(0.3, rel=0.15)


def test_fused_matches_eager_in_law_and_eval():
    x = torch.randn(N, device="cuda")
    fused_unit, eager_unit = unit_on_cuda(seed=1, sigma=0.3), unit_on_cuda(seed=1, sigma=0.3)
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
    ).cuda()
    x = torch.randn(512, 20, device="cuda")
    target = (x[:, 0] > 0).long()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), target)
        loss.backward()
        opt.step()
    model.eval()
    accuracy = (model(x).argmax(1) == target).float().mean().item()
    assert accuracy > 0.95
