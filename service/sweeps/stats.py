"""Across-seed statistics of a sweep: pure functions over plain floats, JSON-safe results.

Every result field is a finite float or None, never NaN or infinity, so it can be sent as
JSON as it is. Intervals use Student's t, which is what small seed counts (3 to 10) need.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """Mean, sample std (ddof=1) and a t confidence interval of the mean; None where undefined."""

    n: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class Paired:
    """An arm minus the baseline over the seeds both have: mean, its t interval and p-value."""

    n_pairs: int
    mean_diff: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _t_interval(
    mean: float, std: float, n: int, confidence: float
) -> tuple[float | None, float | None]:
    """Student's t interval of the mean of `n` values (scipy.stats.t.interval)."""
    if std == 0.0:  # every value equal: scipy needs a positive scale; the interval is a point
        return _finite(mean), _finite(mean)
    low, high = sps.t.interval(confidence, n - 1, loc=mean, scale=std / math.sqrt(n))
    return _finite(float(low)), _finite(float(high))


@np.errstate(all="ignore")  # overflow gives inf, reported as None
def summarize(values: Sequence[float], *, confidence: float = CONFIDENCE) -> Summary:
    """n, mean, std and CI; n=0 gives all None, n=1 a mean with std and CI None."""
    data = np.asarray(values, dtype=float)
    n = int(data.size)
    if n == 0:
        return Summary(0, None, None, None, None)
    mean = float(np.mean(data))
    if n == 1:
        return Summary(1, _finite(mean), None, None, None)
    std = float(np.std(data, ddof=1))
    low, high = _t_interval(mean, std, n, confidence)
    return Summary(n, _finite(mean), _finite(std), low, high)


@np.errstate(all="ignore")
def paired(
    arm: Mapping[int, float],
    baseline: Mapping[int, float],
    *,
    confidence: float = CONFIDENCE,
) -> Paired:
    """Compare `arm` with `baseline` (both seed -> value) over the seeds present in both.

    The p-value is the two-sided paired t-test's (scipy.stats.ttest_rel). With fewer than
    two pairs there is no test (None). When every difference is identical the t statistic
    is 0/0 or x/0: the p-value is then 1.0 if the differences are all 0 (no evidence of a
    difference) and 0.0 otherwise (the same non-zero gap on every seed), never NaN.
    """
    seeds = sorted(set(arm) & set(baseline))
    a = np.asarray([arm[s] for s in seeds], dtype=float)
    b = np.asarray([baseline[s] for s in seeds], dtype=float)
    n = len(seeds)
    if n == 0:
        return Paired(0, None, None, None, None)
    diff = a - b
    mean = float(np.mean(diff))
    if n == 1:
        return Paired(1, _finite(mean), None, None, None)
    std = float(np.std(diff, ddof=1))
    low, high = _t_interval(mean, std, n, confidence)
    if std == 0.0:
        p: float | None = 1.0 if mean == 0.0 else 0.0
    else:
        p = _finite(float(sps.ttest_rel(a, b).pvalue))
    return Paired(n, _finite(mean), low, high, p)
