"""Sweep statistics against numpy/scipy on hand data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from service.sweeps.stats import paired, summarize

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
    p = paired(arm, base)
    a, b = np.array([0.93, 0.92, 0.91, 0.95]), np.array([0.90, 0.92, 0.88, 0.91])
    assert p.n_pairs == 4
    assert p.mean_diff == pytest.approx((a - b).mean(), abs=1e-12)
    assert (p.ci_low, p.ci_high) == pytest.approx(_t_ci(list(a - b)), abs=1e-12)
    assert p.p_value == pytest.approx(sps.ttest_rel(a, b).pvalue, abs=1e-12)
    # The 95% interval excludes 0 exactly when the two-sided test rejects at 5%.
    assert p.ci_low is not None and p.p_value is not None
    assert (p.ci_low > 0) == (p.p_value < 0.05)


def test_paired_with_fewer_than_two_pairs_has_no_test() -> None:
    assert paired({}, {0: 1.0}).n_pairs == 0 and paired({}, {0: 1.0}).mean_diff is None
    one = paired({0: 0.9}, {0: 0.8, 1: 0.7})
    assert one.n_pairs == 1 and one.mean_diff == pytest.approx(0.1)
    assert (one.ci_low, one.ci_high, one.p_value) == (None, None, None)


def test_identical_differences_give_a_finite_p_value() -> None:
    same = paired({0: 0.5, 1: 0.7}, {0: 0.5, 1: 0.7})
    assert (same.mean_diff, same.ci_low, same.ci_high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    shifted = paired({0: 1.5, 1: 2.5, 2: 3.5}, {0: 1.0, 1: 2.0, 2: 3.0})
    assert shifted.mean_diff == 0.5 and shifted.p_value == 0.0
    assert shifted.ci_low == shifted.ci_high == 0.5


def test_results_are_json_safe() -> None:
    for result in (summarize([1e308, -1e308, 1e308]), paired({0: 1.0, 1: 2.0}, {0: 0.0, 1: 3.0})):
        json.dumps(result.__dict__, allow_nan=False)
