"""A/B statistics against independent references (scipy, statsmodels, a bootstrap,
hand computations) on fixed data, and the sequential test's error rate by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from aimon.stats.abtests import (
    Moments,
    adjust_p_values,
    msprt,
    ratio_estimate,
    ratio_test,
    relative_lift,
    required_total,
    two_proportion_test,
    welch_test,
)
from aimon.stats.srm import srm_test

RNG_SEED = 20261129


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(RNG_SEED)


def test_moments_add_up_to_the_one_shot_moments(rng: np.random.Generator) -> None:
    x, y = rng.lognormal(5, 0.7, 1000), rng.lognormal(2, 0.3, 1000)
    parts = [Moments.of(x[i : i + 137], y[i : i + 137]) for i in range(0, 1000, 137)]
    total = sum(parts, Moments())
    whole = Moments.of(x, y)
    assert total.n == whole.n == 1000
    for attr in ("sum_x", "sum_x2", "sum_y", "sum_y2", "sum_xy"):
        assert getattr(total, attr) == pytest.approx(getattr(whole, attr), rel=1e-12)
    assert total.mean == pytest.approx(np.mean(x), rel=1e-12)
    assert total.var == pytest.approx(np.var(x, ddof=1), rel=1e-9)
    assert total.cov_xy == pytest.approx(np.cov(x, y, ddof=1)[0, 1], rel=1e-9)


def test_welch_matches_scipy(rng: np.random.Generator) -> None:
    c = rng.lognormal(5.5, 0.7, 400)
    t = rng.lognormal(5.45, 0.9, 250)  # unequal sizes and variances
    res = welch_test(Moments.of(c), Moments.of(t), alpha=0.05)
    ref = stats.ttest_ind(t, c, equal_var=False)
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-9)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert res.df == pytest.approx(ref.df, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert (res.ci_low, res.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert res.diff == pytest.approx(t.mean() - c.mean())


def test_welch_on_known_numbers() -> None:
    # Two tiny samples, checked against scipy: a change in formula cannot hide here.
    c, t = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0, 10.0]
    res = welch_test(Moments.of(c), Moments.of(t))
    ref = stats.ttest_ind(t, c, equal_var=False)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    # By hand: means 2.5 and 6, variances 5/3 and 10; se^2 = 5/12 + 2.
    se2 = 5 / 12 + 2
    assert res.statistic == pytest.approx(3.5 / math.sqrt(se2), rel=1e-12)
    assert res.df == pytest.approx(se2**2 / ((5 / 12) ** 2 / 3 + 2**2 / 4), rel=1e-12)
    assert res.p_value == pytest.approx(0.0691, abs=1e-4)


def test_two_proportion_z_matches_statsmodels_and_a_hand_computation() -> None:
    c = Moments(n=5000, sum_x=600.0, sum_x2=600.0)
    t = Moments(n=4800, sum_x=648.0, sum_x2=648.0)
    res = two_proportion_test(c, t)
    z_ref, p_ref = proportions_ztest([648, 600], [4800, 5000])
    assert res.statistic == pytest.approx(z_ref, rel=1e-10)
    assert res.p_value == pytest.approx(p_ref, rel=1e-10)
    # By hand: pooled p = 1248 / 9800.
    pooled = 1248 / 9800
    z = (648 / 4800 - 600 / 5000) / math.sqrt(pooled * (1 - pooled) * (1 / 4800 + 1 / 5000))
    assert res.statistic == pytest.approx(z, rel=1e-12)
    assert res.p_value == pytest.approx(2 * (1 - stats.norm.cdf(abs(z))), rel=1e-9)
    low, high = confint_proportions_2indep(648, 4800, 600, 5000, method="newcomb", compare="diff")
    assert (res.ci_low, res.ci_high) == pytest.approx((low, high), rel=1e-9)


def test_delta_method_ratio_matches_a_hand_computation_and_a_bootstrap(rng: np.random.Generator) -> None:
    # cost per output token per request: x = cost, y = tokens
    y = rng.lognormal(5.5, 0.7, 3000)
    x = y * rng.normal(1e-5, 2e-6, 3000)
    m = Moments.of(x, y)
    est = ratio_estimate(m)
    r = x.sum() / y.sum()
    # By hand: linearise, d_i = (x_i - r y_i) / mean(y), var(R) = var(d) / n.
    d = (x - r * y) / y.mean()
    assert est.value == pytest.approx(r, rel=1e-12)
    assert est.variance == pytest.approx(np.var(d, ddof=1) / len(x), rel=1e-6)
    # A bootstrap of the ratio of sums agrees within its own noise (2000 resamples: ~3%).
    idx = rng.integers(0, len(x), (2000, len(x)))
    boot = x[idx].sum(axis=1) / y[idx].sum(axis=1)
    assert math.sqrt(est.variance) == pytest.approx(boot.std(ddof=1), rel=0.08)


def test_ratio_test_of_equal_ratios_is_not_significant_and_of_different_ones_is(rng: np.random.Generator) -> None:
    y1, y2 = rng.lognormal(5, 0.5, 4000), rng.lognormal(5, 0.5, 4000)
    same = ratio_test(Moments.of(2 * y1 + rng.normal(0, 5, 4000), y1), Moments.of(2 * y2 + rng.normal(0, 5, 4000), y2))
    assert same.p_value > 0.01
    diff = ratio_test(Moments.of(2 * y1, y1), Moments.of(2.2 * y2 + rng.normal(0, 1, 4000), y2))
    assert diff.p_value < 1e-6 and diff.diff == pytest.approx(0.2, abs=0.01)
    # z = diff / se, with se from the two delta-method variances
    ec, et = ratio_estimate(Moments.of(2 * y1, y1)), diff.treatment
    assert diff.statistic == pytest.approx((et.value - ec.value) / math.sqrt(ec.variance + et.variance))


def test_relative_lift_delta_variance_against_simulation(rng: np.random.Generator) -> None:
    # Var(mt/mc) by the delta method vs the spread of the ratio over many replications.
    ratios = []
    for _ in range(3000):
        c, t = rng.normal(10, 3, 500), rng.normal(11, 3, 500)
        ratios.append(t.mean() / c.mean())
    c, t = rng.normal(10, 3, 500), rng.normal(11, 3, 500)
    from aimon.stats.abtests import mean_estimate

    lift, var = relative_lift(mean_estimate(Moments.of(c)), mean_estimate(Moments.of(t)))
    assert lift == pytest.approx(t.mean() / c.mean() - 1)
    assert math.sqrt(var) == pytest.approx(np.std(ratios), rel=0.1)


def test_srm_chi_square_matches_scipy() -> None:
    counts, weights = [50_850, 49_150], [0.5, 0.5]
    res = srm_test(counts, weights)
    ref = stats.chisquare(counts, [50_000, 50_000])
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    three = srm_test([3300, 3350, 3350], [1, 1, 1])
    ref3 = stats.chisquare([3300, 3350, 3350])
    assert three.p_value == pytest.approx(ref3.pvalue, rel=1e-9)
    uneven = srm_test([8900, 1100], [0.9, 0.1])
    assert uneven.p_value == pytest.approx(stats.chisquare([8900, 1100], [9000, 1000]).pvalue, rel=1e-9)


def test_a_52_48_split_of_100k_users_is_flagged_and_a_true_50_50_is_not(rng: np.random.Generator) -> None:
    n = 100_000
    broken = int((rng.random(n) < 0.52).sum())
    assert srm_test([broken, n - broken], [0.5, 0.5]).mismatch
    fine = int((rng.random(n) < 0.50).sum())
    res = srm_test([fine, n - fine], [0.5, 0.5])
    assert not res.mismatch and res.p_value > 0.001


@pytest.mark.parametrize("method,sm", [("holm", "holm"), ("bh", "fdr_bh")])
def test_corrections_match_statsmodels(method: str, sm: str) -> None:
    p = [0.01, 0.04, 0.03, 0.2, 0.001, 0.04, 0.9]
    _, ref, _, _ = multipletests(p, method=sm)
    assert adjust_p_values(p, method) == pytest.approx(list(ref), rel=1e-12)
    assert adjust_p_values(p, "none") == p
    with pytest.raises(KeyError, match="valid: holm, bh, none"):
        adjust_p_values(p, "bonferonni")


def test_msprt_on_known_numbers() -> None:
    # v = 1e-4, tau2 = 0.0025, estimate 0.05: computed by hand from Johari et al.'s formula.
    v, tau2, est = 1e-4, 0.0025, 0.05
    lr = math.sqrt(v / (v + tau2)) * math.exp(est**2 * tau2 / (2 * v * (v + tau2)))
    res = msprt(est, v, tau2, alpha=0.05)
    assert res.likelihood_ratio == pytest.approx(lr, rel=1e-12)
    assert res.p_value == pytest.approx(1 / lr, rel=1e-12)
    half = math.sqrt(v * (v + tau2) / tau2 * (2 * math.log(20) + math.log((v + tau2) / v)))
    assert (res.ci_low, res.ci_high) == pytest.approx((est - half, est + half))
    # The interval excludes 0 exactly when the p-value is below alpha.
    for e in (0.01, 0.03, 0.0395, 0.0405, 0.06):
        r = msprt(e, v, tau2)
        assert (r.p_value < 0.05) == (r.ci_low > 0)
    # ...and it is wider than the fixed-horizon interval: the price of peeking.
    assert half > 1.96 * math.sqrt(v)


def test_required_total_matches_the_textbook_formula_and_sequential_needs_more() -> None:
    # Binary, 10% baseline, +10% relative: n per arm = (z_a/2 + z_b)^2 (p1 q1 + p2 q2) / (p2 - p1)^2
    # on the relative scale with control's variance in both arms (as sized here).
    p = 0.1
    fixed = required_total(
        mean_control=p,
        var_control=p * (1 - p),
        var_treatment=p * (1 - p),
        mde=0.1,
        share_control=0.5,
        share_treatment=0.5,
    )
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    pt = p * 1.1
    per_arm = z**2 * (p * (1 - p) + pt**2 / p**2 * p * (1 - p)) / (pt - p) ** 2
    assert fixed == pytest.approx(2 * per_arm, rel=1e-9)
    seq = required_total(
        mean_control=p,
        var_control=p * (1 - p),
        var_treatment=p * (1 - p),
        mde=0.1,
        share_control=0.5,
        share_treatment=0.5,
        sequential_tau2=0.01,
    )
    assert 1.5 * fixed < seq < 5 * fixed


def _simulate_aa(reps: int, days: int, per_day: int, lift: float, seed: int) -> dict[str, float]:
    """Daily looks at A/A (lift 0) or A/B experiments: the share ever declared significant."""
    rng = np.random.default_rng(seed)
    seq_hits = fixed_hits = 0
    for _ in range(reps):
        c = t = Moments()
        p_min = 1.0
        fixed_any = False
        for _day in range(days):
            xc = rng.lognormal(0, 0.8, per_day)
            xt = rng.lognormal(0, 0.8, per_day) * (1 + lift)
            c, t = c + Moments.of(xc), t + Moments.of(xt)
            fixed_any |= welch_test(c, t).p_value < 0.05
            from aimon.stats.abtests import mean_estimate

            r, v = relative_lift(mean_estimate(c), mean_estimate(t))
            p_min = min(p_min, msprt(r, v, 0.05**2).p_value)
        seq_hits += p_min < 0.05
        fixed_hits += fixed_any
    return {"sequential": seq_hits / reps, "fixed": fixed_hits / reps}


def test_daily_peeking_keeps_the_sequential_false_positive_rate_nominal() -> None:
    """300 A/A experiments looked at daily for 14 days (bench/calibrate_ab.py runs 500
    and prints the table in docs/benchmarks.md). Fixed seed: the outcome is reproducible."""
    res = _simulate_aa(reps=300, days=14, per_day=400, lift=0.0, seed=11)
    assert res["sequential"] <= 0.05
    # The fixed-horizon test, looked at daily, cries wolf well above its nominal 5%.
    assert res["fixed"] >= 0.10
    assert res["fixed"] > 2 * res["sequential"]
