"""The variance of a clipped (censored) Gaussian: Var(clip(Z, lo, hi)), Z ~ N(mean, var).

An input-noise unit's output is h(x + n), n ~ N(0, v), with h = slope * clip(z, lo, hi) +
offset (ReLU: lo = 0, hi = inf, slope 1; a hard function: HardSpec's linear part clipped
between its levels), so the noise that reaches its output has variance
slope^2 * Var(clip(x + n, lo, hi) | x): what `output_noise_var` of those units returns.

With T ~ N(0, 1), sigma = sqrt(v), a = (lo - x)/sigma, b = (hi - x)/sigma:
Var(clip(x + n, lo, hi)) = v * Var(clip(T, a, b)), and with phi, Phi the standard normal
pdf and cdf, Q = 1 - Phi, and the one-sided partial moments

    g1(t) = E[(T - t)+]   = phi(t) - t Q(t)
    g2(t) = E[(T - t)+^2] = (1 + t^2) Q(t) - t phi(t)

three algebraically equal forms of Var(clip(T, a, b)) follow from
clip(T, a, b) = T + (a - T)+ - (T - b)+ = a + (T - a)+ - (T - b)+ (derivation:
docs/activations.md, "Diagnostics: definitions"):

    centred (a < 0 < b):  1 + g2(-a) - 2 Phi(a) + g2(b) - 2 Q(b) - (g1(-a) - g1(b))^2
    from a  (a >= 0):     g2(a) - g2(b) - 2 (b - a) g1(b) - (g1(a) - g1(b))^2
    from b  (b <= 0):     the form from a of (-b, -a), since clip(T, a, b) = -clip(-T, -b, -a)

Each is used where its terms are small or O(1), so no large terms cancel: the centred form
where x lies inside (lo, hi), the others where x lies at or beyond a level (the flat
region, where the variance is tiny and the centred form would subtract numbers near a^2).
In all three every g and Q is taken at a point t >= 0, where the tails come through
erfcx (see _tails). Everything runs in float64. A standardised level past +-CUTOFF is moved
to +-CUTOFF: the mass beyond it (Q(40) ~ 1e-350) is below float64's smallest number, so
the result is the same and no inf * 0 appears. At v = 0 the variance is 0.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import HardSpec

CUTOFF = 40.0
# Inside (lo, hi) and at least this many std from both levels the clip changes the
# variance by under phi(10) ~ 1e-22 of it, below float64's rounding of 1: Var = 1 there,
# without the special functions (the diagnostics pass runs this on every element).
LINEAR_CUTOFF = 10.0
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_HALF_PI = math.sqrt(math.pi / 2.0)
_SQRT_HALF = math.sqrt(0.5)


def _tails(t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(Q(t), g1(t), g2(t)) for T ~ N(0, 1) and t >= 0, accurate to the last digits far
    into the tail, through the Mills ratio R(t) = Q(t)/phi(t) = sqrt(pi/2) erfcx(t/sqrt 2):
    Q = phi R, g1 = phi (1 - t R), g2 = phi ((1 + t^2) R - t), whose brackets lose only
    ~t^4 ulps. Q = 1 - Phi from ndtr or erf would lose every digit past t ~ 8 (torch's
    ndtr is 0.5 (1 + erf): ndtr(-7.5) is 3e-4 off, ndtr(-10) is 0)."""
    phi = torch.exp(-0.5 * t * t) * _INV_SQRT_2PI
    mills = torch.special.erfcx(t * _SQRT_HALF) * _SQRT_HALF_PI
    return phi * mills, phi * (1.0 - t * mills), phi * ((1.0 + t * t) * mills - t)


def clipped_std_normal_var(a: Tensor, b: Tensor) -> Tensor:
    """Var(clip(T, a, b)) for T ~ N(0, 1), element by element (a <= b, float64, inf allowed)."""
    a = a.clamp(-CUTOFF, CUTOFF)
    b = b.clamp(-CUTOFF, CUTOFF)
    middle = (a < 0) & (b > 0)
    upper = b <= 0
    # The two points >= 0 each form reads its tails at: centred (-a, b); from a (a, b);
    # from b (-b, -a). For the last two p <= q and q - p = b - a.
    p = torch.where(middle, -a, torch.where(upper, -b, a))
    q = torch.where(upper, -a, b)
    var = middle.to(a.dtype)  # 1 deep inside, 0 deep in the flat region
    near = torch.where(middle, torch.minimum(p, q) < LINEAR_CUTOFF, p < CUTOFF)
    if not bool(near.any()):
        return var
    p, q, centred = p[near], q[near], middle[near]
    qp, g1p, g2p = _tails(p)
    qq, g1q, g2q = _tails(q)
    mean_sq = (g1p - g1q).square()
    from_level = g2p - g2q - 2.0 * (q - p) * g1q - mean_sq
    inside = 1.0 + (g2p - 2.0 * qp) + (g2q - 2.0 * qq) - mean_sq
    # Rounding may leave -1e-17 where the variance is 0.
    var[near] = torch.where(centred, inside, from_level).clamp(min=0.0)
    return var


def clipped_normal_var(mean: Tensor, var: Tensor | float, lo: float, hi: float) -> Tensor:
    """Var(clip(Z, lo, hi)) for Z ~ N(mean, var), element by element, in float64 (0 where
    var is 0). lo may be -inf and hi inf; lo < hi."""
    mean = mean.detach().double()
    var = torch.as_tensor(var, dtype=torch.float64, device=mean.device).broadcast_to(mean.shape)
    out = torch.zeros_like(mean)
    noisy = var > 0
    if not bool(noisy.any()):
        return out
    v, m = var[noisy], mean[noisy]
    std = v.sqrt()
    out[noisy] = v * clipped_std_normal_var((lo - m) / std, (hi - m) / std)
    return out


def hard_output_var(spec: HardSpec | None, x: Tensor, var: Tensor | float) -> Tensor:
    """Var(h(x + n) | x), n ~ N(0, var), for h = clip(slope z + offset, lo, 1) as ``spec``
    gives it, or ReLU (``spec`` None): slope^2 Var(clip(x + n, (lo - offset)/slope,
    (1 - offset)/slope)), since h(z) = slope clip(z, ...) + offset (slope > 0). float64."""
    if spec is None:
        return clipped_normal_var(x, var, 0.0, math.inf)
    lo = (spec.lo - spec.offset) / spec.slope
    hi = (1.0 - spec.offset) / spec.slope
    return clipped_normal_var(x, var, lo, hi) * (spec.slope * spec.slope)
