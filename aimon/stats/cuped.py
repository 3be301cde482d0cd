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


def _arm(y: np.ndarray, x: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)
    if y.shape != x.shape or y.ndim != 1:
        raise ValueError(f"cuped: the {name} arm's metric and covariate differ in length ({len(y)} vs {len(x)})")
    if len(y) < 3:
        raise ValueError(f"cuped: need at least 3 units with pre-period data in the {name} arm, got {len(y)}")
    if not (np.isfinite(y).all() and np.isfinite(x).all()):
        raise ValueError(f"cuped: the {name} arm holds a NaN or infinite value")
    return y, x


def cuped_test(
    y_control: np.ndarray, x_control: np.ndarray, y_treatment: np.ndarray, x_treatment: np.ndarray, alpha: float = 0.05
) -> CupedResult:
    """The CUPED-adjusted Welch comparison of treatment against control."""
    yc, xc = _arm(y_control, x_control, "control")
    yt, xt = _arm(y_treatment, x_treatment, "treatment")
    dxc, dxt = xc - xc.mean(), xt - xt.mean()
    dyc, dyt = yc - yc.mean(), yt - yt.mean()
    sxx = float(dxc @ dxc + dxt @ dxt)
    sxy = float(dxc @ dyc + dxt @ dyt)
    syy = float(dyc @ dyc + dyt @ dyt)
    theta = sxy / sxx if sxx > 0 else 0.0  # a constant covariate: no adjustment
    rho = sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else 0.0
    x_all = (xc.sum() + xt.sum()) / (len(xc) + len(xt))
    nc, nt = len(yc), len(yt)
    vc = float(np.var(yc - theta * xc, ddof=1)) / nc
    vt = float(np.var(yt - theta * xt, ddof=1)) / nt
    ec = Estimate(float(yc.mean() - theta * (xc.mean() - x_all)), vc, nc)
    et = Estimate(float(yt.mean() - theta * (xt.mean() - x_all)), vt, nt)
    se2 = vc + vt
    if se2 == 0:
        raise ValueError("cuped: both arms have zero variance after the adjustment")
    diff = float((yt.mean() - yc.mean()) - theta * (xt.mean() - xc.mean()))
    se = math.sqrt(se2)
    df = se2**2 / (vc**2 / (nc - 1) + vt**2 / (nt - 1))
    stat = diff / se
    p = float(2 * stats.t.sf(abs(stat), df))
    q = float(stats.t.ppf(1 - alpha / 2, df))
    test = TestResult("cuped_welch_t", ec, et, diff, se, stat, p, diff - q * se, diff + q * se, alpha, df)
    unadjusted = math.sqrt(float(np.var(yc, ddof=1)) / nc + float(np.var(yt, ddof=1)) / nt)
    lift, lift_var = relative_lift(ec, et)
    z = float(stats.norm.ppf(1 - alpha / 2))
    half = z * math.sqrt(lift_var)
    reduction = 1.0 - se2 / unadjusted**2 if unadjusted > 0 else 0.0
    return CupedResult(test, theta, rho, unadjusted, reduction, lift, lift - half, lift + half)
