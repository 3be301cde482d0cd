"""Each drift method against scipy or Evidently's own stattest functions on the same
data (to 1e-6), binned methods against a hand computation on tiny frames, and the
reference sketch and merge against exact samples."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from aimon.stats import stattests as st

SIZES = [(15, 18), (60, 45), (3000, 2500), (20_000, 15_000)]  # exact and asymptotic p-value regimes


def _pair(n1: int, n2: int, seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, n1), rng.normal(0.15, 1.2, n2)
    return (np.round(a, 1), np.round(b, 1)) if ties else (a, b)


def close(got: float, want: float, tol: float = 1e-6) -> bool:
    return abs(got - want) <= tol * max(1.0, abs(want))


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize(("n1", "n2"), SIZES)
def test_ks_wasserstein_cvm_equal_scipy(n1: int, n2: int, ties: bool) -> None:
    a, b = _pair(n1, n2, n1, ties)
    ks = st.ks(a, b, 0.05)
    want = stats.ks_2samp(a, b)
    assert close(ks.statistic, want.statistic) and close(ks.p_value, want.pvalue)
    assert (ks.method, ks.threshold, ks.n_reference, ks.n_current) == ("ks", 0.05, n1, n2)
    assert ks.drifted == (want.pvalue < 0.05)

    w = st.wasserstein(a, b, 0.1)
    assert close(w.statistic, stats.wasserstein_distance(a, b) / np.std(a))
    assert w.p_value is None

    cvm = st.cramer_von_mises(a, b, 0.05)
    want_cvm = stats.cramervonmises_2samp(a, b)
    assert close(cvm.statistic, want_cvm.statistic) and close(cvm.p_value, want_cvm.pvalue)


def test_chisquare_equals_scipy_and_z_hand_computed() -> None:
    ref = {"a": 400, "b": 300, "c": 200, "d": 100}
    cur = {"a": 180, "b": 150, "c": 120, "d": 50}
    got = st.chisquare(st.Counts.of(ref), st.Counts.of(cur), 0.05)
    f_exp = np.array([400, 300, 200, 100]) * 500 / 1000
    want = stats.chisquare([180, 150, 120, 50], f_exp)
    assert close(got.statistic, want.statistic) and close(got.p_value, want.pvalue)
    # z: share of non-'a' 0.6 vs 0.64, pooled 0.61333.
    z = st.z(st.Counts.of({"a": 400, "b": 600}), st.Counts.of({"a": 180, "b": 320}), 0.05)
    pooled = (600 + 320) / 1500
    want_z = (0.6 - 0.64) / math.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 500))
    assert close(z.statistic, want_z) and close(z.p_value, 2 * stats.norm.sf(abs(want_z)))


def test_chisquare_new_category_is_infinite_not_a_warning() -> None:
    got = st.chisquare(["a", "b"] * 50, ["a", "b", "new"] * 30, 0.05)
    assert got.statistic == math.inf and got.p_value == 0.0 and got.drifted


def test_binned_methods_by_hand_on_tiny_frames() -> None:
    ref = ["a"] * 5 + ["b"] * 3 + ["c"] * 2  # shares .5 .3 .2
    cur = ["a"] * 2 + ["b"] * 4 + ["c"] * 4  # shares .2 .4 .4
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.4, 0.4])
    want_psi = float(np.sum((p - q) * np.log(p / q)))
    assert close(st.psi(ref, cur, 0.1).statistic, want_psi)
    m = (p + q) / 2
    want_js = math.sqrt(0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m)))
    assert close(st.jensenshannon(ref, cur, 0.1).statistic, want_js)
    assert close(want_js, distance.jensenshannon(p, q))
    want_h = math.sqrt(1 - np.sum(np.sqrt(p * q)))
    assert close(st.hellinger(ref, cur, 0.1).statistic, want_h)
    # A category only one side has: PSI fills the empty share with 0.0001.
    got = st.psi(["a"] * 10, ["a"] * 9 + ["b"], 0.1).statistic
    want = (1 - 0.9) * math.log(1 / 0.9) + (0.0001 - 0.1) * math.log(0.0001 / 0.1)
    assert close(got, want)


@pytest.mark.parametrize("kind", ["numerical", "categorical"])
@pytest.mark.parametrize(("n1", "n2"), [(15, 18), (3000, 2500), (20_000, 15_000)])
def test_every_method_equals_evidentlys(kind: str, n1: int, n2: int) -> None:
    with warnings.catch_warnings():
        # Importing evidently imports its UI stack (litestar), which warns about itself.
        warnings.simplefilter("ignore")
        from evidently.legacy.calculations.stattests import (
            anderson_darling_test,
            chi_stat_test,
            cramer_von_mises,
            epps_singleton_test,
            hellinger_stat_test,
            jensenshannon_stat_test,
            ks_stat_test,
            psi_stat_test,
            wasserstein_stat_test,
            z_stat_test,
        )
        from evidently.legacy.core import ColumnType

    rng = np.random.default_rng(n1 + n2)
    if kind == "numerical":
        a, b = _pair(n1, n2, n1 + 1, ties=n1 > 100)
        methods = {
            "ks": ks_stat_test,
            "wasserstein": wasserstein_stat_test,
            "psi": psi_stat_test,
            "jensenshannon": jensenshannon_stat_test,
            "hellinger": hellinger_stat_test,
            "cramer_von_mises": cramer_von_mises,
            "anderson": anderson_darling_test,
            "es": epps_singleton_test,
        }
        ctype = ColumnType.Numerical
    else:
        a = rng.choice(list("abcd"), n1, p=[0.4, 0.3, 0.2, 0.1])
        b = rng.choice(list("abcd"), n2, p=[0.35, 0.3, 0.2, 0.15])
        methods = {
            "chisquare": chi_stat_test,
            "psi": psi_stat_test,
            "jensenshannon": jensenshannon_stat_test,
            "hellinger": hellinger_stat_test,
        }
        ctype = ColumnType.Categorical
    for name, ev in methods.items():
        ours = st.get_stattest(name)(a, b)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # evidently calls anderson_ksamp the old way
            theirs = ev.func(pd.Series(a), pd.Series(b), ctype, ours.threshold)[0]
        value = ours.p_value if ours.p_value is not None else ours.statistic
        assert close(value, float(theirs)), (name, value, theirs)
    if kind == "categorical":
        a2, b2 = np.where(a == "a", "x", "y"), np.where(b == "a", "x", "y")
        theirs = z_stat_test.func(pd.Series(a2), pd.Series(b2), ctype, 0.05)[0]
        assert close(st.z(a2, b2, 0.05).p_value, theirs)


def test_anderson_darling_and_epps_singleton_give_the_peer_values_and_clear_errors() -> None:
    """Evidently's published Anderson-Darling example (p ~ 0.0635), scipy's statistics,
    and the degenerate inputs each test cannot judge, named."""
    ref = [38.7, 41.5, 43.8, 44.5, 45.5, 46.0, 47.7, 58.0]
    cur = [39.2, 39.3, 39.7, 41.4, 41.8, 42.9, 43.3, 45.8]
    ad = st.get_stattest("anderson")(ref, cur)
    assert ad.p_value == pytest.approx(0.0635, abs=5e-4) and ad.drifted and ad.threshold == 0.1
    assert ad.statistic == pytest.approx(stats.anderson_ksamp([ref, cur], variant="midrank").statistic, rel=1e-12)
    es = st.get_stattest("es")(ref, cur)
    want = stats.epps_singleton_2samp(ref, cur)
    assert (es.statistic, es.p_value) == pytest.approx((want.statistic, want.pvalue), rel=1e-12)
    with pytest.raises(ValueError, match="interquartile range is 0"):
        st.epps_singleton([1.0] * 10, [1.0] * 9 + [2.0], 0.05)
    with pytest.raises(ValueError, match="one and the same value"):
        st.anderson_darling([3.0] * 5, [3.0] * 5, 0.1)
    # On a reference sketch the test runs on its points: a real shift is still found,
    # and the same distribution is not flagged.
    rng = np.random.default_rng(11)
    sk = st.sketch(st.numeric_sample(rng.normal(0, 1, 200_000)), 2000)
    for name in ("anderson", "es"):
        assert st.get_stattest(name)(sk, rng.normal(0.2, 1, 5000)).drifted
        assert not st.get_stattest(name)(sk, rng.normal(0, 1, 5000), 0.001).drifted


def test_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(KeyError) as err:
        st.get_stattest("kolmogorov")
    for name in ("ks", "wasserstein", "psi", "jensenshannon", "chisquare", "z", "cramer_von_mises", "hellinger", "es"):
        assert name in str(err.value)


def test_results_are_frozen_and_carry_what_produced_them() -> None:
    r = st.wasserstein([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], 0.2)
    assert (r.method, r.threshold, r.n_reference, r.n_current) == ("wasserstein", 0.2, 3, 3)
    with pytest.raises(AttributeError):
        r.statistic = 0.0  # type: ignore[misc]


def test_sketch_is_within_its_bound_and_merging_exact_parts_is_exact() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.lognormal(0, 0.7, 300_000), rng.lognormal(0.02, 0.7, 200_000)
    exact = st.numeric_sample(a)
    sk = st.sketch(exact, 5000)
    assert len(sk.values) <= 2 * 5000 + 2 and sk.n == 300_000 and sk.values[0] == a.min() and sk.values[-1] == a.max()
    assert abs(st.ks(sk, b, 0.05).statistic - stats.ks_2samp(a, b).statistic) <= 1 / 5000
    w_exact = stats.wasserstein_distance(a, b) / np.std(a)
    assert abs(st.wasserstein(sk, b, 0.1).statistic - w_exact) <= 2e-3  # vs the 0.1 floor
    # p-values use the true row counts, not the sketch size.
    assert st.ks(sk, b, 0.05).n_reference == 300_000
    parts = [st.numeric_sample(a[:100_000]), st.numeric_sample(a[100_000:])]
    merged = st.merge_samples(parts)
    assert merged.exact and np.array_equal(merged.values, np.sort(a))
    assert close(merged.std, float(np.std(a))) and close(merged.mean, float(np.mean(a)))
    assert close(st.ks(merged, b, 0.05).statistic, stats.ks_2samp(a, b).statistic)
    # Merged sketches still carry every row's weight.
    msk = st.merge_samples([st.sketch(p, 2000) for p in parts])
    assert msk.n == 300_000 and close(float(msk.weights.sum()), 300_000)
    assert abs(st.ks(msk, b, 0.05).statistic - stats.ks_2samp(a, b).statistic) <= 2 / 2000


def test_benjamini_hochberg_by_hand() -> None:
    p = [0.01, 0.04, 0.03, 0.20]
    # sorted .01 .03 .04 .20 -> x4/1, x4/2, x4/3, x4/4 = .04 .06 .0533 .20 -> monotone .04 .0533 .0533 .20
    got = st.benjamini_hochberg(p)
    assert np.allclose(got, [0.04, 0.16 / 3, 0.16 / 3, 0.20])


def test_a_sketched_current_side_stays_within_its_bound() -> None:
    """Current windows above 1M rows are compared through a sketch (aimon.tasks.drift.reads)."""
    rng = np.random.default_rng(6)
    a, b = rng.normal(0, 1, 50_000), rng.normal(0.05, 1.1, 400_000)
    cur = st.sketch(st.numeric_sample(b), 5000)
    assert abs(st.ks(a, cur, 0.05).statistic - stats.ks_2samp(a, b).statistic) <= 1 / 5000
    assert abs(st.wasserstein(a, cur, 0.1).statistic - stats.wasserstein_distance(a, b) / np.std(a)) <= 2e-3
    assert st.ks(a, cur, 0.05).n_current == 400_000
    assert abs(st.cramer_von_mises(a, cur, 0.05).statistic - stats.cramervonmises_2samp(a, b).statistic) < 0.01 * (
        stats.cramervonmises_2samp(a, b).statistic
    )


def test_a_sketch_of_few_distinct_values_is_lossless() -> None:
    """Token counts and other integer-valued features have far fewer distinct values than
    rows: their sketch is every value with its row count, so the statistics are exact."""
    rng = np.random.default_rng(8)
    a = np.round(rng.lognormal(5, 0.6, 300_000))  # ~1,500 distinct token counts
    b = np.round(rng.lognormal(5.01, 0.6, 200_000))
    sk_a, sk_b = st.sketch(st.numeric_sample(a), 5000), st.sketch(st.numeric_sample(b), 5000)
    assert len(sk_a.values) == len(np.unique(a)) < 5000 and sk_a.n == 300_000
    assert close(float(sk_a.weights.sum()), 300_000)
    assert close(st.wasserstein(sk_a, sk_b, 0.1).statistic, stats.wasserstein_distance(a, b) / np.std(a))
    assert close(st.ks(sk_a, sk_b, 0.05).statistic, stats.ks_2samp(a, b).statistic)
    # Merging two windows' lossless sketches is lossless too.
    merged = st.merge_samples([st.sketch(st.numeric_sample(a[:150_000]), 5000), sk_b])
    pooled = np.concatenate([a[:150_000], b])
    assert close(st.wasserstein(merged, sk_a, 0.1).statistic, stats.wasserstein_distance(pooled, a) / np.std(pooled))
