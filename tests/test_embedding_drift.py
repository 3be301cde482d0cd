"""Embedding drift: the MMD permutation test's properties, the domain classifier and the
centroid distance against hand computations, seeded subsampling."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from aimon.stats import embedding as ed


def gauss(rng: np.random.Generator, n: int, shift: float = 0.0, dim: int = 4) -> np.ndarray:
    x = rng.standard_normal((n, dim))
    x[:, 0] += shift
    return x


def test_mmd_statistic_equals_the_pairwise_formula() -> None:
    rng = np.random.default_rng(0)
    x, y = gauss(rng, 30), gauss(rng, 40, 0.5)
    z = np.vstack([x, y])
    bw = ed.median_bandwidth(z)
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    k = np.exp(-d2 / (2 * bw**2))
    want = k[:30, :30].mean() + k[30:, 30:].mean() - 2 * k[:30, 30:].mean()
    res = ed.mmd_test(x, y, permutations=50, seed=1)
    assert res.statistic == pytest.approx(want, rel=1e-9)
    assert (res.n_reference, res.n_current) == (30, 40)


def test_mmd_p_value_counts_the_observed_statistic() -> None:
    rng = np.random.default_rng(1)
    x = gauss(rng, 50)
    # Identical samples: every relabelling is at least as extreme as MMD = 0, so p = 1.
    assert ed.mmd_test(x, x.copy(), permutations=99, seed=0).p_value == 1.0
    # A huge shift: no permutation reaches it, but p never drops below 1 / (B + 1).
    res = ed.mmd_test(x, gauss(rng, 50, 5.0), permutations=99, seed=0)
    assert res.p_value == pytest.approx(1 / 100) and res.drifted


def test_mmd_is_symmetric_and_seeded() -> None:
    rng = np.random.default_rng(2)
    x, y = gauss(rng, 40), gauss(rng, 40, 0.3)
    a, b = ed.mmd_test(x, y, permutations=99, seed=3), ed.mmd_test(y, x, permutations=99, seed=3)
    assert a.statistic == pytest.approx(b.statistic, rel=1e-12)
    assert a == ed.mmd_test(x, y, permutations=99, seed=3)


def test_mmd_null_p_values_are_uniform_enough() -> None:
    """Permuting the pooled sample gives a valid test: under no drift p < 0.05 about
    5% of the time (resampling only the reference, or dropping the observed statistic,
    makes this rate drift away from alpha)."""
    rng = np.random.default_rng(4)
    ps = np.array([ed.mmd_test(gauss(rng, 40), gauss(rng, 40), permutations=99, seed=i).p_value for i in range(120)])
    assert 0.0 <= np.mean(ps < 0.05) <= 0.11
    assert 0.35 <= ps.mean() <= 0.65  # uniform mean 0.5
    assert ps.min() >= 1 / 100


def test_domain_classifier() -> None:
    rng = np.random.default_rng(5)
    same = ed.domain_classifier_auc(gauss(rng, 500), gauss(rng, 500), seed=0)
    assert same.statistic < 0.55 and not same.drifted
    apart = ed.domain_classifier_auc(gauss(rng, 500), gauss(rng, 500, 3.0), seed=0)
    assert apart.statistic > 0.95 and apart.drifted and apart.threshold == 0.55
    assert (apart.n_reference, apart.n_current) == (500, 500)


def test_centroid_distance_by_hand() -> None:
    a = np.array([[1.0, 0.0], [1.0, 0.0]])
    b = np.array([[0.0, 1.0], [1.0, 1.0]])  # mean (0.5, 1)
    want = 1 - 0.5 / np.hypot(0.5, 1.0)
    assert ed.centroid_distance(a, b).statistic == pytest.approx(want)


def test_subsample_is_seeded_and_capped() -> None:
    x = np.arange(1000.0).reshape(-1, 1)
    s1, s2 = ed.subsample(x, 100, 7), ed.subsample(x, 100, 7)
    assert len(s1) == 100 and np.array_equal(s1, s2) and not np.array_equal(s1, ed.subsample(x, 100, 8))
    assert len(np.unique(s1)) == 100 and ed.subsample(x, 5000, 7) is x
    parts = [(9000, np.ones((3000, 2))), (1000, np.zeros((1000, 2)))]
    ref = ed.combine_reference(parts, 1000, 0)
    assert len(ref) == 1000 and ref[:, 0].sum() == 900  # in proportion to each window's rows


def test_to_matrix_reads_arrow_lists_and_rejects_ragged() -> None:
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(6, dtype=np.float32)), 3)
    assert ed.to_matrix(pa.chunked_array([fixed])).shape == (2, 3)
    assert ed.to_matrix(pa.array([[1.0, 2.0], None, [3.0, 4.0]])).shape == (2, 2)
    assert ed.to_matrix(["[1, 2]", "[3, 4]"]).tolist() == [[1, 2], [3, 4]]
    with pytest.raises(ValueError, match="different lengths"):
        ed.to_matrix(pa.array([[1.0, 2.0], [3.0]]))
