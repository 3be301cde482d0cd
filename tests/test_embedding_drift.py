"""Embedding drift: the MMD permutation test's properties, the domain classifier and the
centroid distance against hand computations, seeded subsampling; malformed embeddings
left out row by row and counted by reason."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from aimon.stats import embedding as ed
from aimon.stats import embedding_rows as er


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
    assert ed.centroid_distance(a, b, form="cosine").statistic == pytest.approx(want)
    # Not unit-length: the scaled form. |(-0.5, 1)| over the pooled spread sqrt(0.5 / 2).
    scaled = ed.centroid_distance(a, b)
    assert scaled.form == "scaled" and scaled.statistic == pytest.approx(np.hypot(0.5, 1.0) / 0.5)


def test_the_scaled_centroid_distance_is_stable_where_the_cosine_of_centred_means_is_noise() -> None:
    """Two samples of one centred day: the cosine between their means is the angle
    between two noise vectors (anywhere in [0, 2]); the scaled distance sits at its
    chance level sqrt(1/n + 1/m) every time, and its p-value is uniform."""
    rng = np.random.default_rng(21)
    day = rng.standard_normal((20_000, 16)).astype(np.float32)
    cos, scaled = [], []
    for i in range(10):
        a, b = day[i * 1000 : i * 1000 + 500], day[i * 1000 + 500 : i * 1000 + 1000]
        cos.append(ed.centroid_distance(a, b, form="cosine", permutations=0).statistic)
        r = ed.centroid_distance(a, b, permutations=0)
        assert r.form == "scaled" and r.p_value is None
        scaled.append(r.statistic)
    assert max(cos) - min(cos) > 0.3 and min(cos) > 0.5  # ~1 +- 1/sqrt(16): a right angle, give or take
    chance = np.sqrt(1 / 500 + 1 / 500)
    assert 0.6 * chance < min(scaled) and max(scaled) < 1.5 * chance
    # Calibration: p < 0.05 in ~5% of same-distribution pairs (300 pairs: 2%-9%) ...
    ps = [
        ed.centroid_distance(
            rng.standard_normal((100, 8)), rng.standard_normal((100, 8)), permutations=99, seed=s
        ).p_value
        for s in range(300)
    ]
    assert 0.02 <= np.mean(np.array(ps) < 0.05) <= 0.09
    # ... and a shift of 0.3 sd in one of 16 dimensions at 500 rows a side is found.
    b = rng.standard_normal((500, 16))
    b[:, 0] += 0.3
    shifted = ed.centroid_distance(rng.standard_normal((500, 16)), b)
    assert shifted.p_value is not None and shifted.p_value < 0.01 and shifted.drifted


def test_the_cosine_form_is_kept_for_unit_embeddings_with_a_clear_mean_direction() -> None:
    rng = np.random.default_rng(4)

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    a, b = unit(rng.standard_normal((400, 12)) + 1.0), unit(rng.standard_normal((400, 12)) + 1.0)
    r = ed.centroid_distance(a, b)
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    assert r.form == "cosine" and r.statistic == pytest.approx(1 - ma @ mb / np.linalg.norm(ma) / np.linalg.norm(mb))
    assert r.p_value is not None and r.p_value > 0.01
    # Unit-length but centred (directions all over the sphere): no mean direction, scaled.
    assert ed.centroid_form(unit(rng.standard_normal((800, 12)))) == "scaled"


def test_subsample_is_seeded_and_capped() -> None:
    x = np.arange(1000.0).reshape(-1, 1)
    s1, s2 = ed.subsample(x, 100, 7), ed.subsample(x, 100, 7)
    assert len(s1) == 100 and np.array_equal(s1, s2) and not np.array_equal(s1, ed.subsample(x, 100, 8))
    assert len(np.unique(s1)) == 100 and ed.subsample(x, 5000, 7) is x
    parts = [(9000, np.ones((3000, 2))), (1000, np.zeros((1000, 2)))]
    ref = ed.combine_reference(parts, 1000, 0)
    assert len(ref) == 1000 and ref[:, 0].sum() == 900  # in proportion to each window's rows


def test_embedding_rows_read_arrow_lists_and_json_text() -> None:
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(6, dtype=np.float32)), 3)
    assert er.to_sample(pa.chunked_array([fixed]), 100, 0).matrix.shape == (2, 3)
    assert er.to_sample(pa.array([[1.0, 2.0], None, [3.0, 4.0]]), 100, 0).matrix.shape == (2, 2)
    assert er.to_sample(["[1, 2]", "[3, 4]"], 100, 0).matrix.tolist() == [[1, 2], [3, 4]]
    # With no malformed row, the sample is embedding.subsample's: the same rows as before.
    x = np.random.default_rng(1).standard_normal((500, 4)).astype(np.float32)
    column = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 4)
    assert np.array_equal(er.to_sample(column, 100, 7).matrix, ed.subsample(x, 100, 7))


@pytest.mark.parametrize(
    ("column", "reason"),
    [
        (["[1, 2]", "[3, 4]", "[5, 6, 7]"], "wrong_dimension"),
        (pa.array([[1.0, 2.0], [3.0, 4.0], [5.0]]), "wrong_dimension"),
        (["[1, 2]", "[3, 4]", "[]"], "wrong_dimension"),
        (["[1, 2]", "[3, 4]", "[NaN, 1]"], "nonfinite"),
        (["[1, 2]", "[3, 4]", "[1e39, 1]"], "nonfinite"),  # no float32
        (pa.array([[1.0, 2.0], [3.0, 4.0], [float("inf"), 1.0]]), "nonfinite"),
        (["[1, 2]", "[3, 4]", '[1, "x"]'], "non_numeric"),
        (["[1, 2]", "[3, 4]", "[1, null]"], "non_numeric"),
        (["[1, 2]", "[3, 4]", "[[1], [2]]"], "non_numeric"),
        (pa.array([[1.0, 2.0], [3.0, 4.0], [1.0, None]]), "non_numeric"),
        (["[1, 2]", "[3, 4]", '{"a": 1}'], "not_a_list"),
        (["[1, 2]", "[3, 4]", "7"], "not_a_list"),
        (["[1, 2]", "[3, 4]", "[1, 2"], "not_json"),
    ],
)
def test_a_malformed_embedding_is_left_out_and_counted(column, reason: str) -> None:
    sample = er.to_sample(column, 100, 0)
    assert sample.matrix.tolist() == [[1, 2], [3, 4]] and sample.dimension == 2
    assert sample.rejected == {r: int(r == reason) for r in er.REASONS}
    assert sample.read == 3 and sample.usable == 2


def test_the_window_dimension_is_the_configured_one_or_the_majority() -> None:
    column = ["[1, 2, 3]", "[1, 2]", "[3, 4]", "[5, 6, 7]", "[7, 8, 9]"]
    assert er.to_sample(column, 100, 0).dimension == 3
    pinned = er.to_sample(column, 100, 0, dimension=2)
    assert pinned.matrix.shape == (2, 2) and pinned.rejected["wrong_dimension"] == 3
    # All malformed: no sample, every row counted, no error.
    none = er.to_sample(["x", "[NaN]", "[]"], 100, 0)
    assert none.matrix.shape == (0, 0) and none.dimension is None and none.usable == 0
    assert (none.rejected["not_json"], none.rejected["nonfinite"], none.rejected["wrong_dimension"]) == (1, 1, 1)


def test_a_window_read_in_parts_is_parsed_like_one_read() -> None:
    """Segments keep only their picks but count every row: the same dimension, rejections
    and sample as one read of the window."""
    rng = np.random.default_rng(3)
    rows = [json_row(rng, 3) for _ in range(300)] + [json_row(rng, 5) for _ in range(20)] + ["[NaN, 1, 2]"] * 5
    rows = [rows[i] for i in rng.permutation(len(rows))]
    one = er.to_sample(rows, 100, 0)
    picks = er.sample_positions(len(rows), 100, 0)
    parts = []
    for lo, hi in ((0, 100), (100, 250), (250, len(rows))):
        mine = picks[(picks >= lo) & (picks < hi)] - lo
        parts.append(er.part(er.parse_rows(rows[lo:hi]), mine))
    merged = er.combine(parts)
    assert merged.rejected == one.rejected == {**dict.fromkeys(er.REASONS, 0), "nonfinite": 5, "wrong_dimension": 20}
    assert np.array_equal(merged.matrix, one.matrix) and merged.dimension == 3


def json_row(rng: np.random.Generator, dim: int) -> str:
    return "[" + ", ".join(f"{v:.6f}" for v in rng.standard_normal(dim)) + "]"


def test_the_auc_noise_bound_is_the_null_spread_of_the_auc_at_the_sample_sizes() -> None:
    """At 500 current rows a day, two samples of one distribution reach a domain-classifier
    AUC of 0.55 by chance (a false page every few weeks): the bound grows as the samples
    shrink. Its spread is the Mann-Whitney AUC's null spread (checked against scipy's U on
    null data) times a factor that covers the fitted classifier's (checked on null data)."""
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(11)
    n1, n2 = 1500, 300
    u = [mannwhitneyu(rng.standard_normal(n1), rng.standard_normal(n2)).statistic / (n1 * n2) for _ in range(400)]
    sd_mw = np.sqrt((n1 + n2 + 1) / (12 * n1 * n2))
    assert np.std(u) == pytest.approx(sd_mw, rel=0.12)
    assert ed.auc_noise_bound(n1, n2, 4.5) == pytest.approx(0.5 + 4.5 * ed.AUC_SPREAD_FACTOR * sd_mw)
    aucs = [
        ed.domain_classifier_auc(rng.standard_normal((n1, 8)), rng.standard_normal((n2, 8))).statistic
        for _ in range(24)
    ]
    assert np.std(aucs) < ed.AUC_SPREAD_FACTOR * sd_mw * 1.2
    # Small windows: well above 0.55; at the default cap (5,000 a side) 0.55 itself holds.
    assert ed.auc_noise_bound(3500, 500, 4.5) > 0.58
    assert ed.auc_noise_bound(5000, 5000, 4.5) < 0.55
