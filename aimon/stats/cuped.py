"""CUPED: an experiment's continuous metric adjusted by each unit's pre-experiment
value of the same metric (GrowthBook's and Deng et al. 2013's variance reduction).

Each unit has its metric y during the experiment and its covariate x, the same metric
over a lookback before it. The adjusted difference of means is

    (mean(y_t) - mean(y_c)) - theta (mean(x_t) - mean(x_c)),

with theta the within-arm pooled slope of y on x (sum over arms of the co-deviations
over the sum of squared x deviations): exactly the treatment coefficient of the
regression y ~ 1 + treatment + x (Frisch-Waugh), which tests/test_cuped.py checks to
1e-9 against statsmodels. Each arm's variance is that of y - theta x, so the interval
shrinks by sqrt(1 - rho^2), rho the within-arm correlation of y and x. theta's own
sampling error is not carried (as in GrowthBook and the CUPED paper): it is
O(1/n) beside the O(1/sqrt(n)) of the means. Units without pre-period data are left
out by the caller, counted. The always-valid (sequential) form takes the adjusted diff
and its variance into aimon.stats.abtests.msprt, as the unadjusted one does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from aimon.stats.abtests import Estimate, TestResult, relative_lift


@dataclass(frozen=True)
class CupedResult:
    test: TestResult  # the adjusted comparison; its control/treatment are the adjusted means
    theta: float  # the slope of the metric on its pre-period value
    rho: float  # their within-arm correlation
    unadjusted_se: float  # the plain difference's standard error, on the same units
    variance_reduction: float  # 1 - (adjusted se / unadjusted se)^2, ~ rho^2
    lift: float  # adjusted treatment / adjusted control - 1
    lift_ci_low: float
    lift_ci_high: float
    lift_variance: float  # the delta-method variance of lift (for the sequential test)


@dataclass(frozen=True)
class ArmMoments:
    """One arm's units: their number and the sums of the metric y, its pre-period value
    x, and their squares and product: what a warehouse returns in one GROUP BY. Raw
    sums lose digits when a mean is many standard deviations from 0 (about
    (mean / sd)^2 x 1e-16 relative): fine for latencies, tokens and costs."""

    n: int
    sy: float
    sx: float
    syy: float
    sxx: float
    sxy: float

    @classmethod
    def of(cls, y: np.ndarray, x: np.ndarray) -> ArmMoments:
        return cls(len(y), float(y.sum()), float(x.sum()), float(y @ y), float(x @ x), float(x @ y))


@dataclass(frozen=True)
class _Centred:
    """An arm as means and centred sums (exact from arrays, from raw sums otherwise)."""

    n: int
    my: float
    mx: float
    cyy: float
    cxx: float
    cxy: float


def _centred(m: ArmMoments) -> _Centred:
    my, mx = m.sy / m.n, m.sx / m.n
    # Clipped at 0: rounding can leave a constant column a tiny negative sum of squares.
    return _Centred(m.n, my, mx, max(m.syy - m.sy * my, 0.0), max(m.sxx - m.sx * mx, 0.0), m.sxy - m.sx * my)


def _arm(y: np.ndarray, x: np.ndarray, name: str) -> _Centred:
    y, x = np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)
    if y.shape != x.shape or y.ndim != 1:
        raise ValueError(f"cuped: the {name} arm's metric and covariate differ in length ({len(y)} vs {len(x)})")
    _enough(len(y), name)
    if not (np.isfinite(y).all() and np.isfinite(x).all()):
        raise ValueError(f"cuped: the {name} arm holds a NaN or infinite value")
    dy, dx = y - y.mean(), x - x.mean()
    return _Centred(len(y), float(y.mean()), float(x.mean()), float(dy @ dy), float(dx @ dx), float(dx @ dy))


def _enough(n: int, name: str) -> None:
    if n < 3:
        raise ValueError(f"cuped: need at least 3 units with pre-period data in the {name} arm, got {n}")


def cuped_test(
    y_control: np.ndarray, x_control: np.ndarray, y_treatment: np.ndarray, x_treatment: np.ndarray, alpha: float = 0.05
) -> CupedResult:
    """The CUPED-adjusted Welch comparison of treatment against control, from each
    unit's metric (y) and pre-period value (x)."""
    return _cuped(_arm(y_control, x_control, "control"), _arm(y_treatment, x_treatment, "treatment"), alpha)


def cuped_from_moments(control: ArmMoments, treatment: ArmMoments, alpha: float = 0.05) -> CupedResult:
    """cuped_test from each arm's sums (ArmMoments), as a warehouse query returns them."""
    for m, name in ((control, "control"), (treatment, "treatment")):
        _enough(m.n, name)
        if not all(math.isfinite(v) for v in (m.sy, m.sx, m.syy, m.sxx, m.sxy)):
            raise ValueError(f"cuped: the {name} arm's sums hold a NaN or infinite value")
    return _cuped(_centred(control), _centred(treatment), alpha)


def _cuped(c: _Centred, t: _Centred, alpha: float) -> CupedResult:
    sxx, sxy, syy = c.cxx + t.cxx, c.cxy + t.cxy, c.cyy + t.cyy
    # A covariate constant within the arms (up to rounding): no adjustment.
    flat = sxx <= 1e-12 * max(c.n * c.mx * c.mx + t.n * t.mx * t.mx, 1e-300)
    theta = 0.0 if flat else sxy / sxx
    rho = sxy / math.sqrt(sxx * syy) if not flat and syy > 0 else 0.0
    x_all = (c.n * c.mx + t.n * t.mx) / (c.n + t.n)
    nc, nt = c.n, t.n
    # Var(y - theta x) within each arm, from the centred sums.
    vc = max(c.cyy - 2 * theta * c.cxy + theta * theta * c.cxx, 0.0) / (nc - 1) / nc
    vt = max(t.cyy - 2 * theta * t.cxy + theta * theta * t.cxx, 0.0) / (nt - 1) / nt
    ec = Estimate(c.my - theta * (c.mx - x_all), vc, nc)
    et = Estimate(t.my - theta * (t.mx - x_all), vt, nt)
    se2 = vc + vt
    if se2 == 0:
        raise ValueError("cuped: both arms have zero variance after the adjustment")
    diff = (t.my - c.my) - theta * (t.mx - c.mx)
    se = math.sqrt(se2)
    df = se2**2 / ((vc**2 / (nc - 1) if vc else 0.0) + (vt**2 / (nt - 1) if vt else 0.0))
    stat = diff / se
    p = float(2 * stats.t.sf(abs(stat), df))
    q = float(stats.t.ppf(1 - alpha / 2, df))
    test = TestResult("cuped_welch_t", ec, et, diff, se, stat, p, diff - q * se, diff + q * se, alpha, df)
    unadjusted = math.sqrt(c.cyy / (nc - 1) / nc + t.cyy / (nt - 1) / nt)
    lift, lift_var = relative_lift(ec, et)
    z = float(stats.norm.ppf(1 - alpha / 2))
    half = z * math.sqrt(lift_var)
    reduction = 1.0 - se2 / unadjusted**2 if unadjusted > 0 else 0.0
    return CupedResult(test, theta, rho, unadjusted, reduction, lift, lift - half, lift + half, lift_var)
