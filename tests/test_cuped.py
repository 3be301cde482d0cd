"""CUPED against a direct regression-adjusted estimate (statsmodels OLS) on simulated
data: the same estimate to 1e-9, the interval shrinking by sqrt(1 - rho^2), intervals
that cover the true effect, and inputs it cannot use named."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from aimon.stats.cuped import cuped_test


def experiment(rng: np.random.Generator, n: int, rho: float, effect: float) -> tuple[np.ndarray, ...]:
    """Pre-period x ~ N(10, 2); in-experiment y correlated rho with it; treatment + effect."""
    x = rng.normal(10, 2, 2 * n)
    y = 20 + rho * (x - 10) / 2 * 3 + np.sqrt(1 - rho**2) * 3 * rng.standard_normal(2 * n)
    y[n:] += effect
    return y[:n], x[:n], y[n:], x[n:]


def test_cuped_is_the_regression_adjusted_estimate_and_shrinks_the_interval_by_sqrt_1_minus_rho2() -> None:
    rng = np.random.default_rng(42)
    yc, xc, yt, xt = experiment(rng, 20_000, 0.7, 0.1)
    r = cuped_test(yc, xc, yt, xt)
    design = np.column_stack([np.ones(40_000), np.r_[np.zeros(20_000), np.ones(20_000)], np.r_[xc, xt]])
    ols = sm.OLS(np.r_[yc, yt], design).fit()
    assert r.test.diff == pytest.approx(ols.params[1], rel=1e-9, abs=1e-12)
    assert r.theta == pytest.approx(ols.params[2], rel=1e-9)
    assert r.test.se == pytest.approx(ols.bse[1], rel=0.01)  # homoscedastic here: Welch ~ OLS
    assert r.rho == pytest.approx(0.7, abs=0.01)
    assert r.test.se / r.unadjusted_se == pytest.approx(np.sqrt(1 - r.rho**2), rel=0.01)
    assert r.variance_reduction == pytest.approx(0.49, abs=0.02)
    assert r.test.ci_low < 0.1 < r.test.ci_high and r.test.p_value < 0.01
    assert r.lift == pytest.approx(r.test.diff / r.test.control.value, rel=1e-12)


def test_cuped_intervals_cover_the_true_effect_and_a_useless_covariate_changes_nothing() -> None:
    rng = np.random.default_rng(7)
    covered = sum(
        (lambda r: r.test.ci_low <= 0.2 <= r.test.ci_high)(cuped_test(*experiment(rng, 400, 0.6, 0.2)))
        for _ in range(400)
    )
    assert 0.92 <= covered / 400 <= 0.98
    yc, xc, yt, xt = experiment(rng, 5000, 0.0, 0.0)
    r = cuped_test(yc, xc, yt, xt)
    assert abs(r.variance_reduction) < 0.01
    flat = cuped_test(yc, np.full(5000, 3.0), yt, np.full(5000, 3.0))  # a constant pre-period value
    assert flat.theta == 0.0 and flat.variance_reduction == pytest.approx(0.0, abs=1e-12)
    assert flat.test.diff == pytest.approx(yt.mean() - yc.mean(), rel=1e-12)


def test_cuped_names_what_it_cannot_use() -> None:
    with pytest.raises(ValueError, match="control arm's metric and covariate differ in length"):
        cuped_test(np.ones(5), np.ones(4), np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="at least 3 units with pre-period data in the treatment arm"):
        cuped_test(np.arange(5.0), np.arange(5.0), np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="treatment arm holds a NaN"):
        cuped_test(np.arange(5.0), np.arange(5.0), np.array([1.0, np.nan, 2.0]), np.ones(3))
