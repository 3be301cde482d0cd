"""A/B statistics on sufficient statistics: each test is one plain function.

Everything here works on `Moments` (count, sums, sums of squares and cross-products
of one variant's per-unit values), so a day's moments can be stored and added to the
previous days' instead of re-reading the experiment's rows. No I/O, no config.

- `welch_test`           continuous metrics: Welch's t (unequal variances), as
                         ``scipy.stats.ttest_ind(equal_var=False)``.
- `two_proportion_test`  binary metrics: pooled two-proportion z test; the interval
                         for the difference is Newcombe's hybrid score interval.
- `ratio_test`           ratio metrics (sum of X over sum of Y per unit, e.g. cost per
                         1k output tokens): delta-method z test.
- `relative_lift`        treatment/control - 1 with its delta-method variance.
- `msprt`                always-valid inference: the normal-mixture sequential
                         probability ratio test (Johari, Koomen, Pekelis & Walsh 2017,
                         "Peeking at A/B tests"), p-value and confidence interval.
- `adjust_p_values`      Holm or Benjamini-Hochberg across an experiment's comparisons.
- `required_total`       units needed to detect a relative MDE at a given power.

The sample-ratio-mismatch test of the assignments is in aimon.stats.srm.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CORRECTIONS = ("holm", "bh", "none")


@dataclass(frozen=True)
class Moments:
    """Sufficient statistics of one variant's per-unit values.

    x is the metric value (a 0/1 for binary metrics, the numerator for ratio
    metrics); y is the ratio's denominator (zero otherwise). Adding two `Moments`
    pools their units, so per-window moments add up to the cumulative ones.
    """

    n: int = 0
    sum_x: float = 0.0
    sum_x2: float = 0.0
    sum_y: float = 0.0
    sum_y2: float = 0.0
    sum_xy: float = 0.0

    def __add__(self, other: Moments) -> Moments:
        return Moments(
            self.n + other.n,
            self.sum_x + other.sum_x,
            self.sum_x2 + other.sum_x2,
            self.sum_y + other.sum_y,
            self.sum_y2 + other.sum_y2,
            self.sum_xy + other.sum_xy,
        )

    @classmethod
    def of(cls, x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray | None = None) -> Moments:
        xa = np.asarray(x, dtype="float64")
        if y is None:
            return cls(len(xa), float(xa.sum()), float((xa * xa).sum()))
        ya = np.asarray(y, dtype="float64")
        if len(ya) != len(xa):
            raise ValueError("x and y must have the same length")
        return cls(
            len(xa), float(xa.sum()), float((xa * xa).sum()), float(ya.sum()), float((ya * ya).sum()), float(xa @ ya)
        )

    @property
    def mean(self) -> float:
        return self.sum_x / self.n

    @property
    def mean_y(self) -> float:
        return self.sum_y / self.n

    @property
    def var(self) -> float:
        """Sample variance of x (ddof=1), never negative despite rounding."""
        if self.n < 2:
            return math.nan
        return max(0.0, (self.sum_x2 - self.sum_x * self.sum_x / self.n) / (self.n - 1))

    @property
    def var_y(self) -> float:
        if self.n < 2:
            return math.nan
        return max(0.0, (self.sum_y2 - self.sum_y * self.sum_y / self.n) / (self.n - 1))

    @property
    def cov_xy(self) -> float:
        if self.n < 2:
            return math.nan
        return (self.sum_xy - self.sum_x * self.sum_y / self.n) / (self.n - 1)

    @property
    def ratio(self) -> float:
        return self.sum_x / self.sum_y


@dataclass(frozen=True)
class Estimate:
    """A point estimate of one arm's metric and the variance of that estimate."""

    value: float
    variance: float
    n: int


@dataclass(frozen=True)
class TestResult:
    """A fixed-horizon comparison of treatment against control on the absolute scale."""

    method: str
    control: Estimate
    treatment: Estimate
    diff: float  # treatment - control
    se: float  # standard error of diff
    statistic: float  # t or z
    p_value: float
    ci_low: float  # interval for diff at 1 - alpha
    ci_high: float
    alpha: float
    df: float | None = None  # Welch degrees of freedom


def _check_arms(c: Moments, t: Moments) -> None:
    if c.n < 2 or t.n < 2:
        raise ValueError(f"need at least 2 units per arm (control {c.n}, treatment {t.n})")


def mean_estimate(m: Moments) -> Estimate:
    return Estimate(m.mean, m.var / m.n, m.n)


def proportion_estimate(m: Moments) -> Estimate:
    p = m.mean
    return Estimate(p, p * (1 - p) / m.n, m.n)


def ratio_estimate(m: Moments) -> Estimate:
    """Delta method for R = mean(x) / mean(y) over units:
    Var(R) ~ (s_x^2 - 2 R s_xy + R^2 s_y^2) / (n * mean(y)^2)."""
    if m.sum_y == 0:
        raise ValueError("the ratio's denominator sums to 0")
    r = m.ratio
    var = (m.var - 2 * r * m.cov_xy + r * r * m.var_y) / (m.n * m.mean_y**2)
    return Estimate(r, max(0.0, var), m.n)


def welch_test(c: Moments, t: Moments, alpha: float = 0.05) -> TestResult:
    """Welch's unequal-variance t test of mean(t) - mean(c)."""
    _check_arms(c, t)
    ec, et = mean_estimate(c), mean_estimate(t)
    se2 = ec.variance + et.variance
    diff = et.value - ec.value
    if se2 == 0:
        raise ValueError("both arms have zero variance")
    se = math.sqrt(se2)
    df = se2**2 / (ec.variance**2 / (c.n - 1) + et.variance**2 / (t.n - 1))
    stat = diff / se
    p = float(2 * stats.t.sf(abs(stat), df))
    q = float(stats.t.ppf(1 - alpha / 2, df))
    return TestResult("welch_t", ec, et, diff, se, stat, p, diff - q * se, diff + q * se, alpha, df)


def _wilson(x: float, n: int, z: float) -> tuple[float, float]:
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def newcombe_interval(c: Moments, t: Moments, alpha: float = 0.05) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p_t - p_c (method 10 of Newcombe 1998),
    built from the two Wilson intervals; better than Wald near 0 and 1."""
    z = float(stats.norm.ppf(1 - alpha / 2))
    pc, pt = c.mean, t.mean
    lc, uc = _wilson(c.sum_x, c.n, z)
    lt, ut = _wilson(t.sum_x, t.n, z)
    d = pt - pc
    low = d - math.sqrt((pt - lt) ** 2 + (uc - pc) ** 2)
    high = d + math.sqrt((ut - pt) ** 2 + (pc - lc) ** 2)
    return low, high


def two_proportion_test(c: Moments, t: Moments, alpha: float = 0.05) -> TestResult:
    """Pooled two-proportion z test of p_t - p_c; Newcombe interval for the difference."""
    _check_arms(c, t)
    ec, et = proportion_estimate(c), proportion_estimate(t)
    pooled = (c.sum_x + t.sum_x) / (c.n + t.n)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / c.n + 1 / t.n))
    diff = et.value - ec.value
    if se0 == 0:
        raise ValueError("no variation: every unit in both arms has the same value")
    z = diff / se0
    p = float(2 * stats.norm.sf(abs(z)))
    low, high = newcombe_interval(c, t, alpha)
    return TestResult("two_proportion_z", ec, et, diff, math.sqrt(ec.variance + et.variance), z, p, low, high, alpha)


def ratio_test(c: Moments, t: Moments, alpha: float = 0.05) -> TestResult:
    """Delta-method z test of R_t - R_c for ratio metrics (sum x / sum y per arm)."""
    _check_arms(c, t)
    ec, et = ratio_estimate(c), ratio_estimate(t)
    se2 = ec.variance + et.variance
    if se2 == 0:
        raise ValueError("both arms have zero variance")
    se = math.sqrt(se2)
    diff = et.value - ec.value
    z = diff / se
    p = float(2 * stats.norm.sf(abs(z)))
    q = float(stats.norm.ppf(1 - alpha / 2))
    return TestResult("delta_method_z", ec, et, diff, se, z, p, diff - q * se, diff + q * se, alpha)


TESTS: dict[str, Callable[[Moments, Moments, float], TestResult]] = {
    "continuous": welch_test,
    "binary": two_proportion_test,
    "ratio": ratio_test,
}
ESTIMATES: dict[str, Callable[[Moments], Estimate]] = {
    "continuous": mean_estimate,
    "binary": proportion_estimate,
    "ratio": ratio_estimate,
}


def get_test(kind: str) -> Callable[[Moments, Moments, float], TestResult]:
    try:
        return TESTS[kind]
    except KeyError:
        raise KeyError(f"unknown metric type {kind!r}; valid: {', '.join(TESTS)}") from None


def relative_lift(control: Estimate, treatment: Estimate) -> tuple[float, float]:
    """(treatment / control - 1, its delta-method variance); arms independent."""
    mc, mt = control.value, treatment.value
    if mc == 0:
        raise ValueError("the control mean is 0: a relative lift is undefined")
    lift = mt / mc - 1
    var = treatment.variance / mc**2 + mt**2 * control.variance / mc**4
    return lift, var


@dataclass(frozen=True)
class SequentialResult:
    """One look of the normal-mixture SPRT for H0: theta = 0."""

    estimate: float
    variance: float
    tau2: float  # mixing variance, on the estimate's scale
    likelihood_ratio: float
    p_value: float  # min(1, 1 / LR) at this look; take the running minimum over looks
    ci_low: float  # the always-valid 1 - alpha interval at this look; intersect over looks
    ci_high: float


def msprt(estimate: float, variance: float, tau2: float, alpha: float = 0.05) -> SequentialResult:
    """The mixture SPRT with a N(0, tau2) mixture over the effect (Johari et al. 2017).

    With an asymptotically normal estimate of variance v, the mixture likelihood ratio
    against theta = 0 is
        LR = sqrt(v / (v + tau2)) * exp(estimate^2 * tau2 / (2 v (v + tau2)))
    and 1/LR is an always-valid p-value: P(ever 1/LR <= alpha | H0) <= alpha, however
    often one looks. Inverting the test at every theta gives the confidence sequence
        estimate +- sqrt(v (v + tau2) / tau2 * (2 log(1/alpha) + log((v + tau2) / v))).
    """
    if variance <= 0 or tau2 <= 0:
        raise ValueError("variance and tau2 must be positive")
    v = variance
    log_lr = 0.5 * math.log(v / (v + tau2)) + estimate * estimate * tau2 / (2 * v * (v + tau2))
    p = math.exp(-log_lr) if log_lr > 0 else 1.0
    half = math.sqrt(v * (v + tau2) / tau2 * (2 * math.log(1 / alpha) + math.log((v + tau2) / v)))
    lr = math.exp(min(log_lr, 700.0))
    return SequentialResult(estimate, v, tau2, lr, min(1.0, p), estimate - half, estimate + half)


def msprt_half_width(variance: float, tau2: float, alpha: float) -> float:
    v = variance
    return math.sqrt(v * (v + tau2) / tau2 * (2 * math.log(1 / alpha) + math.log((v + tau2) / v)))


def adjust_p_values(p_values: Sequence[float], method: str) -> list[float]:
    """Holm (family-wise error) or Benjamini-Hochberg (false discovery rate) adjusted
    p-values, as ``statsmodels.stats.multitest.multipletests`` computes them."""
    if method not in CORRECTIONS:
        raise KeyError(f"unknown correction {method!r}; valid: {', '.join(CORRECTIONS)}")
    p = np.asarray(p_values, dtype="float64")
    m = len(p)
    if m == 0 or method == "none":
        return p.tolist()
    order = np.argsort(p, kind="mergesort")
    ranked = p[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * ranked)
    else:
        adj = np.minimum.accumulate(m / np.arange(m, 0, -1) * ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out.tolist()


def required_total(
    *,
    mean_control: float,
    var_control: float,
    var_treatment: float,
    mde: float,
    share_control: float,
    share_treatment: float,
    alpha: float = 0.05,
    power: float = 0.8,
    sequential_tau2: float | None = None,
) -> float:
    """Units (control + treatment) needed to detect a relative lift of `mde` with
    probability `power` on the relative-lift scale.

    Fixed horizon: the usual closed form. Sequential: the smallest total at which an
    effect of `mde` lands outside the mSPRT boundary with probability `power` (one
    look), found by bisection; it is larger, the price of looking every day.
    `var_*` are per-unit variances; `share_*` each arm's share of the pair.
    """
    if mean_control == 0 or mde <= 0:
        return math.inf
    mt = mean_control * (1 + mde)

    def v(total: float) -> float:  # variance of the relative lift at this total
        return var_treatment / (total * share_treatment * mean_control**2) + mt**2 * var_control / (
            total * share_control * mean_control**4
        )

    z_power = float(stats.norm.ppf(power))
    if sequential_tau2 is None:
        z = float(stats.norm.ppf(1 - alpha / 2))
        return v(1.0) * (z + z_power) ** 2 / mde**2

    def short(total: float) -> float:  # > 0 while the total is too small
        var = v(total)
        return msprt_half_width(var, sequential_tau2, alpha) + z_power * math.sqrt(var) - mde

    lo, hi = 2.0, 4.0
    while short(hi) > 0:
        lo, hi = hi, hi * 2
        if hi > 1e15:
            return math.inf
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        if short(mid) > 0:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1.0001:
            break
    return hi
