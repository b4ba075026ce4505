"""Output-side noise (issue 31): Var(h(x + n) | x) of the input-noise units in closed form,
against scipy and Monte Carlo, and the output-side SNRs built on it."""

import itertools
import math

import pytest
import torch
from scipy import integrate, stats

import activations
from activations import censored, diagnostics
from activations.base import HARD_SIGMOID, HARD_TANH, NoisyActivation
from activations.registry import names

INF = math.inf
# (h as clip(z, lo, hi) in z = x + n, slope): ReLU, hard tanh, hard sigmoid.
CLIPS = {"relu": (0.0, INF, 1.0), "hard_tanh": (-1.0, 1.0, 1.0), "hard_sigmoid": (-2.0, 2.0, 0.25)}
SPECS = {"relu": None, "hard_tanh": HARD_TANH, "hard_sigmoid": HARD_SIGMOID}
INPUT_SIDE = ["nrelu", *(f"{k}_{b}" for k in ("nani", "nanis") for b in CLIPS)]
OUTPUT_SIDE = ["noisy_relu", "noisy_hard_tanh", "noisy_hard_sigmoid", "rrelu", "gaussian_dropout"]


def _censored_var_scipy(mean: float, var: float, lo: float, hi: float) -> float:
    """Var(clip(Z, lo, hi)), Z ~ N(mean, var), as a three-part mixture: a point mass at lo
    (weight P(Z <= lo)), one at hi (P(Z >= hi)) and the normal truncated to (lo, hi) (its
    mean and variance from scipy.stats.truncnorm); law of total variance. Weights and
    means are taken from the side of the nearest level, so a tail's 1e-14 is not lost in a
    1 - (1 - 1e-14)."""
    if var == 0.0:
        return 0.0
    std = math.sqrt(var)
    a, b = (lo - mean) / std, (hi - mean) / std
    norm = stats.norm
    p_lo, p_hi = norm.cdf(a), norm.sf(b)
    if a >= 0:
        p_mid, ref = norm.sf(a) - norm.sf(b), lo
    elif b <= 0:
        p_mid, ref = norm.cdf(b) - norm.cdf(a), hi
    else:
        p_mid, ref = 1.0 - p_lo - p_hi, mean
    t_mean, t_var = (float(v) for v in stats.truncnorm.stats(a, b, loc=mean, scale=std))
    parts = [(p_mid, t_mean - ref, t_var)]
    parts += [(p, level - ref, 0.0) for p, level in ((p_lo, lo), (p_hi, hi)) if p > 0]
    total = sum(p * d for p, d, _ in parts)
    return sum(p * (v + (d - total) ** 2) for p, d, v in parts)


def _censored_var_quad(mean: float, var: float, lo: float, hi: float) -> float:
    """The same by numerical integration of (clip(z) - E)^2 against N(mean, var)."""
    std = math.sqrt(var)
    pdf = stats.norm(mean, std).pdf
    clip = lambda z: min(max(z, lo), hi)  # noqa: E731
    edges = [mean - 12 * std, *(e for e in (lo, hi) if abs(e - mean) < 12 * std), mean + 12 * std]
    edges = sorted(edges)

    def moment(f):
        pieces = itertools.pairwise(edges)
        return sum(integrate.quad(f, u, w, epsabs=1e-15, epsrel=1e-12)[0] for u, w in pieces)

    first = moment(lambda z: clip(z) * pdf(z))
    return moment(lambda z: (clip(z) - first) ** 2 * pdf(z))


# (x, v) per h: at the levels, in the linear part, just beyond a level, far into the flat
# region (6 to 8 std past a level: the variance is then 1e-11 to 1e-15 of v, which a
# 1 - ndtr would lose), with no noise, and with noise wider than the linear part.
CASES = {
    "relu": [
        (0.0, 0.25),
        (0.3, 1.0),
        (-0.4, 0.04),
        (-1.5, 0.04),
        (2.0, 0.01),
        (1.0, 0.0),
        (0.0, 0.0),
    ],
    "hard_tanh": [
        (1.0, 0.0025),
        (-1.0, 0.0625),
        (0.5, 0.0025),
        (1.3, 0.0625),
        (-2.5, 0.0625),
        (0.0, 25.0),
        (1.0, 0.0),
    ],
    "hard_sigmoid": [
        (2.0, 0.0625),
        (-2.0, 0.0025),
        (0.0, 1.0),
        (2.5, 0.0625),
        (-4.0, 0.0625),
        (3.0, 0.0),
    ],
}


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("base", list(CLIPS))
def test_closed_form_matches_scipy(base):
    lo, hi, slope = CLIPS[base]
    xs = torch.tensor([x for x, _ in CASES[base]], dtype=torch.float64)
    vs = torch.tensor([v for _, v in CASES[base]], dtype=torch.float64)
    got = censored.hard_output_var(SPECS[base], xs, vs)
    assert got.dtype == torch.float64
    for (x, v), value in zip(CASES[base], got.tolist(), strict=True):
        expected = slope**2 * _censored_var_scipy(x, v, lo, hi)
        assert value == pytest.approx(expected, rel=1e-9, abs=1e-300), (x, v)
        if v == 0.0:
            assert value == 0.0
        elif expected > 1e-12 * v:  # quad cannot resolve the far flat region's 1e-25
            assert value == pytest.approx(slope**2 * _censored_var_quad(x, v, lo, hi), rel=1e-8)


def test_closed_form_in_known_points():
    # At a level the clipped half is a half-normal: Var = v (1/2 - 1/(2 pi)) for ReLU at x = 0.
    half = 0.5 - 1.0 / (2.0 * math.pi)
    value = censored.clipped_normal_var(torch.zeros(1), 4.0, 0.0, INF).item()
    assert value == pytest.approx(4.0 * half, rel=1e-14)
    # Far inside the linear part the clip never acts: Var = v.
    assert censored.clipped_normal_var(torch.zeros(1), 1e-4, -1.0, 1.0).item() == pytest.approx(
        1e-4, rel=1e-14
    )
    # Deep in the flat region (20 std past the level) the variance is tiny but not lost:
    # 2 phi(t)/t^3 (1 - 10/t^2 + ...) at t = 20, against scipy's truncated-normal moments.
    deep = censored.clipped_normal_var(torch.tensor([-4.0]), 0.04, 0.0, INF).item()
    assert 0.0 < deep == pytest.approx(_censored_var_scipy(-4.0, 0.04, 0.0, INF), rel=1e-8)


@pytest.mark.parametrize("name", INPUT_SIDE)
def test_closed_form_matches_monte_carlo(name):
    # Each column a fixed x, each row an independent draw of the unit's training noise.
    unit = activations.create(name, generator=torch.Generator().manual_seed(5))
    if name.startswith("nanis"):
        unit.c = 0.6  # wider noise, so more of it crosses back through the clip
    xs = torch.tensor([-3.0, -2.1, -2.0, -1.0, -0.2, 0.0, 0.4, 1.0, 1.2, 2.0, 2.6])
    n = 200_000
    y = unit.train()(xs.expand(n, -1).contiguous()).double()
    sample_var = y.var(dim=0)
    # Standard error of a sample variance: sqrt(Var((y - mean)^2) / n).
    se = ((y - y.mean(dim=0)).square().var(dim=0) / n).sqrt()
    exact = unit.output_noise_var(xs)
    assert exact.shape == xs.shape
    moved = sample_var > 0
    assert bool(((sample_var - exact).abs() <= 5 * se)[moved].all()), (name, sample_var, exact, se)
    # Where no draw moved the output (no noise there, or x far past a level), the output
    # variance is at most v * P(x + n crosses the level) (the excess over a level at or
    # beyond the mean has second moment <= 1 std^2), and n draws all miss a crossing of
    # probability P with probability exp(-n P): P > 10/n would be missed 1 time in 22000.
    v = torch.as_tensor(unit.effective_noise_std(xs), dtype=torch.float64).square()
    assert bool((exact <= 10 * v / n)[~moved].all()), (name, exact, v)
    assert int(moved.sum()) >= 4  # the clip at work at several x, not only the trivial cases


@pytest.mark.parametrize("name", INPUT_SIDE)
def test_poincare_bound_output_snr_at_least_input_snr(name):
    # h has slope <= 1, so Var(h(x + n) | x) <= slope^2 v <= v and snr_output >= snr.
    unit = activations.create(name)
    x = torch.randn(400, 6, generator=torch.Generator().manual_seed(3)) * 2.5
    v = torch.as_tensor(unit.effective_noise_std(x), dtype=torch.float64).square()
    out = unit.output_noise_var(x)
    slope = HARD_SIGMOID.slope if name.endswith("hard_sigmoid") else 1.0
    # (1e-6: effective_noise_std is float32, nrelu's sigmoid in output_noise_var float64.)
    assert bool((out <= slope**2 * v * (1 + 1e-6)).all())
    assert diagnostics.snr_output(unit, x) >= diagnostics.snr(unit, x)
    assert diagnostics.snr_output_unit_median(unit, x) >= diagnostics.snr_unit_median(unit, x)


@pytest.mark.parametrize("name", OUTPUT_SIDE)
def test_output_side_units_snr_output_is_snr(name):
    unit = activations.create(name)
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(4)) * 2
    assert diagnostics.snr_output(unit, x) == pytest.approx(diagnostics.snr(unit, x), rel=1e-6)
    median = diagnostics.snr_output_unit_median(unit, x)
    assert median == pytest.approx(diagnostics.snr_unit_median(unit, x), rel=1e-6)


def test_every_builtin_noisy_unit_says_where_its_noise_is():
    sides = {}
    for name in names():
        unit = activations.create(name)
        if isinstance(unit, NoisyActivation):
            sides[name] = unit.noise_side
    assert {n for n, side in sides.items() if side == "input"} == set(INPUT_SIDE)
    assert {n for n, side in sides.items() if side == "output"} >= set(OUTPUT_SIDE)
    assert set(sides.values()) <= {"input", "output"}


def test_undeclared_noise_side_has_no_output_figure():
    class Plugin(NoisyActivation):  # a plugin that adds noise but does not say where
        def forward(self, x):
            return x

        def effective_noise_std(self, x):
            return 0.5

    x = torch.randn(10, 3)
    assert diagnostics.output_noise_var(Plugin(), x) is None
    assert diagnostics.snr_output(Plugin(), x) is None
    assert diagnostics.snr_output_unit_median(Plugin(), x) is None
    assert diagnostics.snr_output(activations.create("relu"), x) is None
    assert diagnostics.snr(Plugin(), x) == pytest.approx(x.var(unbiased=False).item() / 0.25)


def test_noise_free_output_snr():
    unit = activations.create("nanis_relu")
    x = torch.rand(20, 4) + 0.1  # never saturated: NANIS adds no noise anywhere
    assert diagnostics.snr_output(unit, x) == float("inf")
    assert diagnostics.snr_output_unit_median(unit, x) is None
    activations.set_noise_scale(unit, 0.0)
    assert diagnostics.snr_output(unit, -x) == float("inf")
