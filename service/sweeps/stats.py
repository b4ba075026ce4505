"""Across-seed statistics of a sweep: pure functions over plain floats, JSON-safe results.

Every result field is a finite float or None, never NaN or infinity, so it can be sent as
JSON as it is. Intervals use Student's t, which is what small seed counts (3 to 10) need.
The tests and intervals are scipy's and statsmodels' (ttest_rel, ttest_ind, nct,
bootstrap, ttost_paired/ttost_ind, multipletests); what is computed here is only how they
are combined, and checked against them in tests/service/sweeps/test_stats.py.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# scipy.stats and statsmodels are imported where they are used, not here: together they take
# about 1 s to import, which every API process paid at its start (sweeps/service.py imports
# this module) though most never compares a sweep.

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
    from scipy import stats as sps

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


@dataclass(frozen=True)
class Compared:
    """An arm minus the baseline: the test the seeds allow, its effect sizes and intervals.

    `test` is `paired_t` when at least two seeds have a value in both (the differences of
    shared seeds; each seed is one training randomness, common to both), else `welch`
    (independent groups, unequal variances) when each side has two values, else `none`.
    `flags` says why a figure is missing: `too_few` (no test possible), `zero_variance`
    (every difference, or every value, equal: a t statistic is 0/0 or x/0, so no p-value
    rather than p = 0).
    """

    test: str
    n_pairs: int
    n_arm: int
    n_baseline: int
    mean_diff: float | None
    ci_low: float | None
    ci_high: float | None
    statistic: float | None
    df: float | None
    p_value: float | None
    d_z: float | None
    d_z_ci_low: float | None
    d_z_ci_high: float | None
    hedges_g: float | None
    hedges_g_ci_low: float | None
    hedges_g_ci_high: float | None
    boot_ci_low: float | None
    boot_ci_high: float | None
    margin: float | None
    tost_p: float | None
    flags: tuple[str, ...]


def _nct_interval(t: float, df: float, confidence: float) -> tuple[float, float] | None:
    """The noncentrality parameters between which `t` is not in either alpha/2 tail of the
    noncentral t (scipy.stats.nct), found by root-finding: the exact interval that a
    standardised effect's CI is scaled from (Steiger & Fouladi 1997).

    Both bounds are found on `nct.sf`: the upper one through the mirror identity
    cdf(t; nc) = sf(-t; -nc). scipy's `nct.cdf` returns NaN at some noncentralities a
    search passes through (t = -2.6, df = 2 at nc = 8.9), which left no interval for
    about one t in three at small df."""
    from scipy import optimize
    from scipy import stats as sps

    tail = (1 - confidence) / 2

    def lower(t: float) -> float | None:  # the nc at which t is the upper alpha/2 point
        def f(nc: float) -> float:
            return float(sps.nct.sf(t, df, nc)) - tail

        width = 10.0 + abs(t)
        for _ in range(8):  # widen the bracket until it holds the root
            lo, hi = t - width, t + width
            if f(lo) * f(hi) < 0:
                try:
                    return float(optimize.brentq(f, lo, hi, xtol=1e-12))
                except ValueError:  # a NaN met on the way: no interval rather than a wrong one
                    return None
            width *= 4
        return None

    low, mirrored = lower(t), lower(-t)
    return None if low is None or mirrored is None else (low, -mirrored)


def _hedges(
    a: np.ndarray, b: np.ndarray, confidence: float
) -> tuple[float | None, float | None, float | None]:
    """Hedges' g (Cohen's d on the pooled SD, times the small-sample correction J) and its
    noncentral-t interval."""
    n1, n2 = len(a), len(b)
    if n1 < 2 or n2 < 2:
        return None, None, None
    pooled = math.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    if pooled == 0.0:
        return None, None, None
    from scipy import special

    df = n1 + n2 - 2
    j = math.exp(special.gammaln(df / 2) - special.gammaln((df - 1) / 2)) / math.sqrt(df / 2)
    d = float(a.mean() - b.mean()) / pooled
    scale = math.sqrt(1 / n1 + 1 / n2)
    nc = _nct_interval(d / scale, df, confidence)
    if nc is None:
        return _finite(j * d), None, None
    return _finite(j * d), _finite(j * nc[0] * scale), _finite(j * nc[1] * scale)


def _bootstrap(
    samples: tuple[np.ndarray, ...], statistic: Any, confidence: float
) -> tuple[float | None, float | None]:
    """scipy.stats.bootstrap's BCa interval (fixed seed: the same data give the same
    interval); None when the data are too few or all equal (degenerate)."""
    if min(len(x) for x in samples) < 3:
        return None, None
    from scipy import stats as sps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DegenerateDataWarning: reported as None below
        result = sps.bootstrap(
            samples,
            statistic,
            confidence_level=confidence,
            n_resamples=9999,
            method="BCa",
            random_state=np.random.default_rng(0),
            paired=len(samples) == 1,
        )
    interval = result.confidence_interval
    return _finite(float(interval.low)), _finite(float(interval.high))


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> Any:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


@np.errstate(all="ignore")
def compare(
    arm: Mapping[int, float],
    baseline: Mapping[int, float],
    *,
    confidence: float = CONFIDENCE,
    margin: float | None = None,
    bootstrap: bool = False,
) -> Compared:
    """`arm` minus `baseline` (both seed -> value): paired over the seeds both have, else
    Welch's test over all their values. With `margin`, the two one-sided tests (TOST, from
    statsmodels) of |difference| < margin: a small `tost_p` supports "no effect larger than
    the margin". With `bootstrap`, a BCa interval too (9,999 resamples: tens of
    milliseconds a comparison, so only when asked, not on every poll of a sweep)."""
    key = (tuple(sorted(arm.items())), tuple(sorted(baseline.items())))
    return _compare(*key, confidence=confidence, margin=margin, bootstrap=bootstrap)


@functools.lru_cache(maxsize=4096)
@np.errstate(all="ignore")
def _compare(
    arm_items: tuple[tuple[int, float], ...],
    base_items: tuple[tuple[int, float], ...],
    *,
    confidence: float,
    margin: float | None,
    bootstrap: bool,
) -> Compared:
    """compare(), memoised on its values: a sweep's view is polled (`wait`, the dashboard)
    and its finished arms' comparisons do not change between polls (about 10 ms each,
    mostly the noncentral-t roots)."""
    arm, baseline = dict(arm_items), dict(base_items)
    seeds = sorted(set(arm) & set(baseline))
    if len(seeds) >= 2:
        a = np.asarray([arm[s] for s in seeds], dtype=float)
        b = np.asarray([baseline[s] for s in seeds], dtype=float)
        return _paired(a, b, confidence, margin, len(arm), len(baseline), bootstrap)
    a = np.asarray([arm[s] for s in sorted(arm)], dtype=float)
    b = np.asarray([baseline[s] for s in sorted(baseline)], dtype=float)
    if len(a) >= 2 and len(b) >= 2:
        return _welch(a, b, confidence, margin, bootstrap)
    diff = _finite(float(a.mean() - b.mean())) if len(a) and len(b) else None
    return Compared(
        "none", len(seeds), len(a), len(b), diff, *(None,) * 13, margin, None, ("too_few",)
    )


def _paired(
    a: np.ndarray,
    b: np.ndarray,
    confidence: float,
    margin: float | None,
    n_arm: int,
    n_base: int,
    bootstrap: bool,
) -> Compared:
    n = len(a)
    diff = a - b
    mean, std = float(diff.mean()), float(diff.std(ddof=1))
    low, high = _t_interval(mean, std, n, confidence)
    g = _hedges(a, b, confidence)
    boot = _bootstrap((diff,), np.mean, confidence) if bootstrap else (None, None)
    if std == 0.0:  # every seed moved by the same amount: no t statistic, no p-value
        return Compared(
            "paired_t", n, n_arm, n_base, _finite(mean), low, high, None, n - 1, None,
            None, None, None, *g, *boot, margin, None, ("zero_variance",),
        )  # fmt: skip
    from scipy import stats as sps
    from statsmodels.stats import weightstats

    t = sps.ttest_rel(a, b)
    d = mean / std
    nc = _nct_interval(d * math.sqrt(n), n - 1, confidence)
    d_low, d_high = (nc[0] / math.sqrt(n), nc[1] / math.sqrt(n)) if nc else (None, None)
    tost = None
    if margin is not None:
        tost = _finite(float(weightstats.ttost_paired(a, b, -margin, margin)[0]))
    return Compared(
        "paired_t", n, n_arm, n_base, _finite(mean), low, high, _finite(float(t.statistic)),
        n - 1, _finite(float(t.pvalue)), _finite(d), _opt(d_low), _opt(d_high), *g, *boot,
        margin, tost, (),
    )  # fmt: skip


def _welch(
    a: np.ndarray, b: np.ndarray, confidence: float, margin: float | None, bootstrap: bool
) -> Compared:
    mean = float(a.mean() - b.mean())
    g = _hedges(a, b, confidence)
    boot = _bootstrap((a, b), _mean_diff, confidence) if bootstrap else (None, None)
    if a.var(ddof=1) == 0.0 and b.var(ddof=1) == 0.0:
        return Compared(
            "welch", 0, len(a), len(b), _finite(mean), None, None, None, None, None,
            None, None, None, *g, *boot, margin, None, ("zero_variance",),
        )  # fmt: skip
    from scipy import stats as sps
    from statsmodels.stats import weightstats

    t = sps.ttest_ind(a, b, equal_var=False)
    df = float(t.df)
    low, high = t.confidence_interval(confidence)
    tost = None
    if margin is not None:
        tost = _finite(float(weightstats.ttost_ind(a, b, -margin, margin, usevar="unequal")[0]))
    return Compared(
        "welch", 0, len(a), len(b), _finite(mean), _finite(float(low)), _finite(float(high)),
        _finite(float(t.statistic)), _finite(df), _finite(float(t.pvalue)), None, None, None,
        *g, *boot, margin, tost, (),
    )  # fmt: skip


def _opt(x: float | None) -> float | None:
    return None if x is None else _finite(x)


def adjust(p_values: Sequence[float | None], method: str) -> list[float | None]:
    """Family-wise (`holm`) or false-discovery-rate (`fdr_bh`) adjusted p-values over the
    comparisons that have one; a missing p stays missing and is not counted in the family.

    BH is scipy's `false_discovery_control`. Holm is its three-line step-down here:
    statsmodels' `multipletests(method="holm")` gives the same values (the tests check it)
    but calls `gc.collect()` on every call, 0.3 s in a server process that holds torch,
    paid by every poll of a sweep.
    """
    present = [i for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    if not present:
        return out
    p = np.asarray([p_values[i] for i in present], dtype=float)
    if method == "fdr_bh":
        from scipy import stats as sps

        adjusted = sps.false_discovery_control(p, method="bh")
    elif method == "holm":
        order = np.argsort(p, kind="stable")
        steps = p[order] * (len(p) - np.arange(len(p)))  # the i-th smallest times (m - i)
        adjusted = np.empty_like(p)
        adjusted[order] = np.minimum(np.maximum.accumulate(steps), 1.0)
    else:
        raise ValueError(f"method {method!r}: holm or fdr_bh")
    for i, value in zip(present, adjusted, strict=True):
        out[i] = _finite(float(value))
    return out


CROSSED_RESAMPLES = 2000


def crossed_bootstrap(
    rows: np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = CROSSED_RESAMPLES,
    seed: int = 0,
) -> tuple[float | None, float | None]:
    """A percentile interval of the grand mean of `rows` (seeds x test examples) that
    resamples both: the seeds (rows) with replacement and, independently, the test examples
    (columns) with replacement, as Owen's (2007) "pigeonhole" bootstrap of a crossed design.

    A row is one seed's per-example hits (an arm's accuracy), or one seed's per-example
    hit differences between two arms on the same test examples (a paired comparison), so
    the interval covers the training randomness *and* the test set's sampling, which a
    seeds-only interval leaves out: every seed is scored on the same test examples. Owen
    shows the pigeonhole bootstrap is mildly conservative (its variance exceeds the true one
    by at most the interaction term counted twice more), never anti-conservative.

    No library has a crossed bootstrap (scipy.stats.bootstrap resamples one axis), so it is
    written here: each resample draws the examples' multiplicities (a multinomial, as
    bincounts of uniform draws) and the seeds' indices from two generators seeded apart, so
    every comparison over the same test set sees the same example resamples (common random
    numbers across a family). None below 3 seeds (no spread to resample) or when every
    resample gives the same mean (degenerate).
    """
    data = np.asarray(rows, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] < 3 or data.shape[1] < 1:
        return None, None
    n, examples = data.shape
    example_rng = np.random.default_rng([seed, 1])
    seed_rng = np.random.default_rng([seed, 2])
    means = np.empty(n_resamples)
    chunk = max(1, min(n_resamples, 2_000_000 // examples))  # bounds the weights' memory
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        draws = example_rng.integers(examples, size=(size, examples))
        flat = (np.arange(size)[:, None] * examples + draws).ravel()
        weights = np.bincount(flat, minlength=size * examples).reshape(size, examples)
        per_seed = data @ weights.T  # [n, size]: each seed's hits over the resampled examples
        picks = seed_rng.integers(n, size=(size, n))
        means[start : start + size] = np.take_along_axis(per_seed.T, picks, axis=1).sum(axis=1) / (
            n * examples
        )
    if np.ptp(means) == 0.0:
        return None, None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return _finite(float(low)), _finite(float(high))


def crossed_rows(
    arm: Mapping[int, np.ndarray], baseline: Mapping[int, np.ndarray] | None = None
) -> np.ndarray | None:
    """The seeds x examples matrix `crossed_bootstrap` resamples: an arm's hits (seeds in
    order), or the arm's minus the baseline's over the seeds both have. None when a seed's
    vector differs in length from the others (not the same test set)."""
    seeds = sorted(arm if baseline is None else set(arm) & set(baseline))
    if not seeds:
        return None
    rows = [
        arm[s].astype(np.int8) - (0 if baseline is None else baseline[s].astype(np.int8))
        for s in seeds
    ]
    if len({len(r) for r in rows}) != 1:
        return None
    return np.stack(rows)
