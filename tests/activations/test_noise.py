"""Noise families: moments, distributions, independence, regeneration, dtype."""

import math

import pytest
import torch
from act_helpers import lag1_corr
from scipy import stats

from activations import noise

N = 1_000_000


def draw(kind: str, n: int = N, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1234)
    return noise.sample(kind, torch.empty(n, dtype=dtype), gen)


@pytest.mark.parametrize("kind", ["gaussian", "laplace", "uniform"])
def test_unit_variance_families_have_zero_mean_unit_variance(kind):
    v = draw(kind)
    assert abs(v.mean().item()) < 3e-3
    assert v.var().item() == pytest.approx(1.0, rel=0.01)


def test_half_normal_moments():
    v = draw("half_normal")
    assert v.mean().item() == pytest.approx(math.sqrt(2 / math.pi), rel=3e-3)
    assert v.std().item() == pytest.approx(noise.HALF_NORMAL_STD, rel=0.01)
    assert noise.mean_of("half_normal") == pytest.approx(0.7978845608)


@pytest.mark.parametrize(
    ("kind", "cdf"),
    [
        ("gaussian", stats.norm.cdf),
        ("laplace", stats.laplace(scale=1 / math.sqrt(2)).cdf),
        ("uniform", stats.uniform(loc=-math.sqrt(3), scale=2 * math.sqrt(3)).cdf),
        ("half_normal", stats.halfnorm.cdf),
    ],
)
def test_distribution_matches_family(kind, cdf):
    v = draw(kind, 200_000).numpy()
    assert stats.kstest(v, cdf).pvalue > 1e-3


@pytest.mark.parametrize("kind", ["gaussian", "laplace", "uniform"])
def test_neighbouring_elements_uncorrelated(kind):
    assert abs(lag1_corr(draw(kind))) < 4e-3


@pytest.mark.parametrize("kind", noise.KINDS)
def test_resample_reproduces_the_draw(kind):
    gen = torch.Generator().manual_seed(7)
    like = torch.empty(1000, 17)
    state = noise.rng_state(gen, like.device)
    first = noise.sample(kind, like, gen)
    assert torch.equal(noise.resample(kind, like, state), first)
    assert not torch.equal(noise.sample(kind, like, gen), first)


def test_resample_with_default_generator():
    like = torch.empty(500)
    state = noise.rng_state(None, like.device)
    assert torch.equal(
        noise.resample("gaussian", like, state), noise.sample("gaussian", like, None)
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kind", noise.KINDS)
def test_noise_follows_dtype(kind, dtype):
    v = draw(kind, 10_000, dtype)
    assert v.dtype == dtype
    assert torch.isfinite(v).all()


def test_unknown_kind_rejected():
    with pytest.raises(ValueError, match="unknown noise kind"):
        noise.sample("cauchy", torch.empty(3), None)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_laplace_tail_is_finite_and_bounded_in_low_precision(dtype):
    # 2**24 float32 uniforms hit u = -1/2 about once, where log1p(-2|u|) is -inf; the
    # largest honest draw is b * log(2**24) ~ 11.8 for unit variance.
    v = draw("laplace", 1 << 24, dtype).float()
    assert v.abs().max().item() < 12.0
    assert v.var().item() == pytest.approx(1.0, rel=0.01)


@pytest.mark.parametrize("kind", ["gaussian", "laplace", "uniform", "half_normal"])
def test_large_cpu_draws_are_parallel_chunks_with_the_same_law(kind):
    n = 4 * noise.CHUNK + 123  # the chunked path, with a ragged last chunk
    v = draw(kind, n, torch.float32).double()
    mean, std = noise.mean_of(kind), noise.std_of(kind)
    assert v.mean().item() == pytest.approx(mean, abs=3e-3)
    assert v.std().item() == pytest.approx(std, rel=3e-3)
    chunks = v[: 4 * noise.CHUNK].view(4, -1)
    # Independent chunks: no chunk repeats another, and they are uncorrelated.
    assert not torch.equal(chunks[0], chunks[1])
    assert abs(float(torch.corrcoef(chunks[:2])[0, 1])) < 5e-3
    assert abs(lag1_corr(v)) < 3e-3


def test_chunked_draws_are_reproducible_whatever_the_thread_count():
    like = torch.empty(3 * noise.CHUNK)
    gen = torch.Generator().manual_seed(7)
    state = gen.get_state()
    first = noise.sample("gaussian", like, gen)
    second = noise.sample("gaussian", like, gen)
    assert not torch.equal(first, second)  # the caller's generator advanced
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        noise._pool = None  # a one-thread pool now
        assert torch.equal(noise.resample("gaussian", like, state), first)
    finally:
        torch.set_num_threads(threads)
        noise._pool = None
