"""Sweep statistics against numpy/scipy on hand data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats import multitest, weightstats

from service.sweeps.stats import (
    _nct_interval,
    adjust,
    compare,
    crossed_bootstrap,
    crossed_rows,
    summarize,
)

ACC = [0.91, 0.93, 0.90, 0.94, 0.92]


def _t_ci(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values)
    half = sps.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a))
    return a.mean() - half, a.mean() + half


def test_summary_matches_numpy_and_students_t() -> None:
    s = summarize(ACC)
    low, high = _t_ci(ACC)
    assert s.n == 5
    assert s.mean == pytest.approx(np.mean(ACC), abs=1e-12)
    assert s.std == pytest.approx(np.std(ACC, ddof=1), abs=1e-12)
    assert (s.ci_low, s.ci_high) == pytest.approx((low, high), abs=1e-12)
    # Same interval as scipy's own t.interval around the standard error.
    ref = sps.t.interval(0.95, 4, loc=np.mean(ACC), scale=sps.sem(ACC))
    assert (s.ci_low, s.ci_high) == pytest.approx(ref, abs=1e-12)


def test_two_values_use_one_degree_of_freedom() -> None:
    s = summarize([1.0, 2.0])
    assert s.ci_high - 1.5 == pytest.approx(12.706204736 * math.sqrt(0.5) / math.sqrt(2), 1e-9)


def test_n_zero_and_one_have_no_spread() -> None:
    assert summarize([]) == summarize([]).__class__(0, None, None, None, None)
    one = summarize([0.5])
    assert (one.n, one.mean, one.std, one.ci_low, one.ci_high) == (1, 0.5, None, None, None)


def test_constant_values_have_a_zero_width_interval() -> None:
    s = summarize([0.75, 0.75, 0.75])
    assert (s.std, s.ci_low, s.ci_high) == (0.0, 0.75, 0.75)


def test_paired_matches_ttest_rel_over_common_seeds() -> None:
    base = {0: 0.90, 1: 0.92, 2: 0.88, 3: 0.91, 9: 0.5}
    arm = {0: 0.93, 1: 0.92, 2: 0.91, 3: 0.95, 7: 0.1}
    p = compare(arm, base)
    a, b = np.array([0.93, 0.92, 0.91, 0.95]), np.array([0.90, 0.92, 0.88, 0.91])
    ref = sps.ttest_rel(a, b)
    assert (p.test, p.n_pairs, p.n_arm, p.n_baseline) == ("paired_t", 4, 5, 5)
    assert p.mean_diff == pytest.approx((a - b).mean(), abs=1e-12)
    assert (p.ci_low, p.ci_high) == pytest.approx(_t_ci(list(a - b)), abs=1e-12)
    assert p.p_value == pytest.approx(ref.pvalue, abs=1e-12)
    assert (p.statistic, p.df) == (pytest.approx(ref.statistic, abs=1e-9), 3)
    assert (p.ci_low, p.ci_high) == pytest.approx(tuple(ref.confidence_interval()), abs=1e-12)
    # The 95% interval excludes 0 exactly when the two-sided test rejects at 5%.
    assert p.ci_low is not None and p.p_value is not None
    assert (p.ci_low > 0) == (p.p_value < 0.05)


def test_d_z_and_its_interval_invert_the_noncentral_t() -> None:
    arm = {s: v for s, v in enumerate([0.93, 0.92, 0.91, 0.95, 0.90, 0.94])}
    base = {s: v for s, v in enumerate([0.90, 0.92, 0.88, 0.91, 0.89, 0.90])}
    c = compare(arm, base)
    diff = np.array(list(arm.values())) - np.array(list(base.values()))
    n = len(diff)
    assert c.d_z == pytest.approx(diff.mean() / diff.std(ddof=1), abs=1e-12)
    t = c.d_z * math.sqrt(n)
    assert c.statistic == pytest.approx(t, abs=1e-9)  # d_z is t / sqrt(n)
    # The bounds are the noncentralities that put t at the 97.5% and 2.5% points.
    assert sps.nct.sf(t, n - 1, c.d_z_ci_low * math.sqrt(n)) == pytest.approx(0.025, abs=1e-9)
    assert sps.nct.cdf(t, n - 1, c.d_z_ci_high * math.sqrt(n)) == pytest.approx(0.025, abs=1e-9)
    assert c.d_z_ci_low < c.d_z < c.d_z_ci_high


@pytest.mark.parametrize("df", [1, 2, 3, 4, 9, 29])
def test_the_noncentral_interval_exists_for_every_t_at_small_df(df: int) -> None:
    """scipy's nct.cdf gives NaN at some noncentralities (t = -2.6, df = 2 near nc = 8.9):
    the bounds must not depend on it. Each bound puts t at its alpha/2 point (the upper one
    checked through cdf(t; nc) = sf(-t; -nc), which is finite everywhere)."""
    for t in np.linspace(-12.0, 12.0, 97):
        bounds = _nct_interval(float(t), df, 0.95)
        assert bounds is not None, (t, df)
        low, high = bounds
        assert low < t < high
        assert sps.nct.sf(t, df, low) == pytest.approx(0.025, abs=1e-9)
        assert sps.nct.sf(-t, df, -high) == pytest.approx(0.025, abs=1e-9)
        where_cdf_is_finite = sps.nct.cdf(t, df, high)
        if not math.isnan(where_cdf_is_finite):
            assert where_cdf_is_finite == pytest.approx(0.025, abs=1e-9)


def test_hedges_g_is_cohens_d_times_the_small_sample_correction() -> None:
    a, b = np.array([0.93, 0.92, 0.91, 0.95]), np.array([0.90, 0.92, 0.88, 0.91, 0.86])
    c = compare(dict(enumerate(a)), {10 + i: v for i, v in enumerate(b)})  # no shared seed
    n1, n2 = len(a), len(b)
    pooled = math.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    df = n1 + n2 - 2
    j = 1 - 3 / (4 * df - 1)  # Hedges' approximation of the exact gamma-function J
    assert c.hedges_g == pytest.approx(j * (a.mean() - b.mean()) / pooled, rel=5e-3)
    assert c.hedges_g_ci_low < c.hedges_g < c.hedges_g_ci_high


def test_welch_where_seeds_do_not_pair_matches_ttest_ind() -> None:
    arm, base = {0: 0.91, 1: 0.93, 2: 0.95}, {3: 0.90, 4: 0.89, 5: 0.94, 6: 0.88}
    c = compare(arm, base)
    ref = sps.ttest_ind([0.91, 0.93, 0.95], [0.90, 0.89, 0.94, 0.88], equal_var=False)
    assert (c.test, c.n_pairs) == ("welch", 0)
    assert c.p_value == pytest.approx(ref.pvalue, abs=1e-12)
    assert c.df == pytest.approx(ref.df, abs=1e-9)
    assert (c.ci_low, c.ci_high) == pytest.approx(tuple(ref.confidence_interval()), abs=1e-12)
    one_pair = compare({0: 0.9, 1: 0.8, 2: 0.7}, {0: 0.85, 5: 0.75})
    assert one_pair.test == "welch"  # a single shared seed is no pairing


def test_tost_matches_statsmodels_for_paired_and_welch() -> None:
    a, b = [0.93, 0.92, 0.91, 0.95, 0.90], [0.92, 0.92, 0.90, 0.93, 0.91]
    c = compare(dict(enumerate(a)), dict(enumerate(b)), margin=0.03)
    assert c.tost_p == pytest.approx(weightstats.ttost_paired(np.array(a), np.array(b), -0.03,
                                                              0.03)[0], abs=1e-12)  # fmt: skip
    w = compare(dict(enumerate(a)), {9 + i: v for i, v in enumerate(b)}, margin=0.03)
    ref = weightstats.ttost_ind(np.array(a), np.array(b), -0.03, 0.03, usevar="unequal")[0]
    assert w.tost_p == pytest.approx(ref, abs=1e-12)
    assert compare(dict(enumerate(a)), dict(enumerate(b))).tost_p is None  # no margin, no TOST


def test_the_bootstrap_interval_is_scipys_bca_and_reproducible() -> None:
    a = [0.93, 0.92, 0.91, 0.95, 0.90, 0.97]
    b = [0.90, 0.92, 0.88, 0.91, 0.89, 0.90]
    c = compare(dict(enumerate(a)), dict(enumerate(b)), bootstrap=True)
    diff = np.array(a) - np.array(b)
    ref = sps.bootstrap((diff,), np.mean, n_resamples=9999, method="BCa",
                        random_state=np.random.default_rng(0)).confidence_interval  # fmt: skip
    assert (c.boot_ci_low, c.boot_ci_high) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert c == compare(dict(enumerate(a)), dict(enumerate(b)), bootstrap=True)
    assert compare(dict(enumerate(a)), dict(enumerate(b))).boot_ci_low is None  # not asked
    two = compare({0: 1.0, 1: 2.0}, {0: 0.0, 1: 3.0}, bootstrap=True)
    assert two.boot_ci_low is None  # n = 2: none


def test_fewer_than_two_values_have_no_test_and_say_so() -> None:
    empty = compare({}, {0: 1.0})
    assert (empty.test, empty.n_pairs, empty.mean_diff, empty.flags) == ("none", 0, None,
                                                                         ("too_few",))  # fmt: skip
    one = compare({0: 0.9}, {0: 0.8, 1: 0.7})
    assert one.n_pairs == 1 and one.test == "none" and one.flags == ("too_few",)
    assert (one.ci_low, one.ci_high, one.p_value) == (None, None, None)


def test_zero_variance_is_flagged_never_p_zero() -> None:
    same = compare({0: 0.5, 1: 0.7}, {0: 0.5, 1: 0.7})
    assert (same.mean_diff, same.p_value, same.flags) == (0.0, None, ("zero_variance",))
    shifted = compare({0: 1.5, 1: 2.5, 2: 3.5}, {0: 1.0, 1: 2.0, 2: 3.0})
    assert shifted.mean_diff == 0.5 and shifted.p_value is None and shifted.d_z is None
    assert shifted.ci_low == shifted.ci_high == 0.5 and shifted.flags == ("zero_variance",)
    ties = compare({3: 0.8, 4: 0.8}, {5: 0.6, 6: 0.6})  # Welch, every value tied
    assert ties.test == "welch" and ties.p_value is None and ties.flags == ("zero_variance",)


def test_holm_and_bh_match_statsmodels_and_skip_missing_p_values() -> None:
    p = [0.01, None, 0.04, 0.03, 0.2]
    present = [0.01, 0.04, 0.03, 0.2]
    for method in ("holm", "fdr_bh"):
        ref = list(multitest.multipletests(present, method=method)[1])
        got = adjust(p, method)
        assert got[1] is None
        assert [x for x in got if x is not None] == pytest.approx(ref, abs=1e-12)
    # By hand: Holm multiplies the i-th smallest of m = 4 by (m - i) and keeps it monotone.
    assert adjust(p, "holm") == pytest.approx([0.04, None, 0.09, 0.09, 0.2])
    assert adjust([None, None], "holm") == [None, None]


def test_results_are_json_safe() -> None:
    for result in (summarize([1e308, -1e308, 1e308]), compare({0: 1.0, 1: 2.0}, {0: 0.0, 1: 3.0})):
        json.dumps(result.__dict__, allow_nan=False)


def test_holm_and_bh_equal_statsmodels_on_random_families_with_ties() -> None:
    rng = np.random.default_rng(1)
    for _ in range(30):  # statsmodels' holm runs gc.collect() each call: keep it few
        p = list(rng.uniform(0, 0.2, rng.integers(1, 12)) ** rng.uniform(0.5, 3))
        if len(p) > 2:
            p[0] = p[-1]  # a tie
        for method in ("holm", "fdr_bh"):
            ref = multitest.multipletests(p, method=method)[1]
            assert adjust(p, method) == pytest.approx(list(ref), abs=1e-12)


# --- crossed bootstrap: seeds x test examples ----------------------------------------------


def test_the_crossed_bootstrap_of_rows_constant_over_examples_is_the_seeds_bootstrap() -> None:
    """Rows that do not vary over examples leave only the seeds to resample: scipy's
    percentile bootstrap of the row means (both Monte Carlo: equal within their noise)."""
    means = np.array([0.61, 0.58, 0.64, 0.60, 0.57, 0.66, 0.62, 0.59])
    rows = np.repeat(means[:, None], 200, axis=1)
    low, high = crossed_bootstrap(rows, n_resamples=40_000)
    ref = sps.bootstrap((means,), np.mean, n_resamples=40_000, method="percentile",
                        random_state=np.random.default_rng(1)).confidence_interval  # fmt: skip
    se = means.std(ddof=1) / math.sqrt(len(means))
    assert (low, high) == pytest.approx((ref.low, ref.high), abs=0.05 * se)


def test_the_crossed_bootstrap_of_identical_seeds_is_the_test_sets_binomial_interval() -> None:
    """Every seed the same: only the examples vary, and the interval is the one-sample
    bootstrap of the hits (scipy's), about the binomial +-1.96 sqrt(p(1-p)/N)."""
    hits = np.random.default_rng(3).random(1000) < 0.6
    rows = np.tile(hits, (5, 1)).astype(float)
    low, high = crossed_bootstrap(rows, n_resamples=20_000)
    ref = sps.bootstrap((hits.astype(float),), np.mean, n_resamples=20_000,
                        method="percentile", random_state=np.random.default_rng(1))  # fmt: skip
    se = math.sqrt(hits.mean() * (1 - hits.mean()) / len(hits))
    ci = ref.confidence_interval
    # Means of 1,000 hits lie on a grid of 0.001 (0.065 se): a percentile may fall one step apart.
    assert (low, high) == pytest.approx((ci.low, ci.high), abs=0.1 * se)
    assert (high - low) / 2 == pytest.approx(1.96 * se, rel=0.05)


def test_the_crossed_interval_adds_the_test_sets_spread_to_the_seeds() -> None:
    """Seeds that differ and a finite test set: the interval is wider than either alone,
    close to the sum of the two variances (the crossed design's main effects), holds the
    grand mean, and the same data give the same interval."""
    rng = np.random.default_rng(7)
    n, examples = 10, 1000
    difficulty = rng.normal(0, 1.5, examples)  # an example is hard for every seed alike
    skill = rng.normal(0, 0.15, n)
    rows = rng.random((n, examples)) < 1 / (1 + np.exp(-(0.4 + skill[:, None] - difficulty)))
    rows = rows.astype(float)
    low, high = crossed_bootstrap(rows)
    assert low < rows.mean() < high
    assert (low, high) == crossed_bootstrap(rows)
    seeds_half = 1.96 * rows.mean(axis=1).std(ddof=1) / math.sqrt(n)
    examples_half = 1.96 * rows.mean(axis=0).std(ddof=1) / math.sqrt(examples)
    half = (high - low) / 2
    assert half > max(seeds_half, examples_half)
    assert half == pytest.approx(math.hypot(seeds_half, examples_half), rel=0.15)


def test_crossed_rows_pair_the_seeds_both_arms_have() -> None:
    a = {0: np.array([1, 1, 0, 1], bool), 1: np.array([0, 1, 0, 1], bool), 5: np.ones(4, bool)}
    b = {0: np.array([1, 0, 0, 1], bool), 1: np.array([1, 1, 0, 0], bool), 2: np.ones(4, bool)}
    rows = crossed_rows(a, b)
    assert rows.tolist() == [[0, 1, 0, 0], [-1, 0, 0, 1]]  # seeds 0 and 1, arm minus baseline
    assert crossed_rows(a).shape == (3, 4)
    assert crossed_rows(a, {7: np.ones(4, bool)}) is None  # no shared seed
    assert crossed_rows({0: np.ones(3, bool), 1: np.ones(4, bool)}) is None  # not one test set


def test_the_crossed_bootstrap_refuses_too_few_seeds_and_degenerate_data() -> None:
    assert crossed_bootstrap(np.ones((2, 100))) == (None, None)  # two seeds: no interval
    assert crossed_bootstrap(np.ones((5, 100))) == (None, None)  # every resample equal
    assert crossed_bootstrap(np.zeros((0, 0))) == (None, None)
    assert crossed_bootstrap(np.ones(10)) == (None, None)  # not seeds x examples
