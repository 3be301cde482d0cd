"""Drift tests on shares: numerical values binned, or category counts (PSI,
Jensen-Shannon, Hellinger), and the tests on categories alone (chi-square, z).

Definitions follow Evidently 0.7 so the figures mean what its users expect:
- ``psi`` and ``jensenshannon``: numerical values are binned over the pooled range with
  numpy's Sturges edges when the reference has more than 20 distinct values, else
  compared value by value; PSI fills empty bins with 0.0001 (or min/1e6); JS does not;
  JS is scipy's ``jensenshannon`` distance (natural log);
- ``hellinger``: Sturges density histograms over the distinct values' range (numerical)
  or category shares; ``chisquare``: expected counts are the reference's scaled to the
  current size; ``z``: two-proportion z test on the first (sorted) category.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special, stats

from aimon.stats.stattests.results import StatTestResult, _d_result, _need, _p_result
from aimon.stats.stattests.samples import Counts, Kind, NumericSample, _as_counts, _as_numeric, _num_key

# -- binned (numerical or categorical) ----------------------------------------------


def _sturges_edges(ref: NumericSample, cur: NumericSample) -> np.ndarray:
    """numpy's histogram_bin_edges(pooled, 'sturges'), from the sizes and the range."""
    lo = min(ref.values[0], cur.values[0])
    hi = max(ref.values[-1], cur.values[-1])
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
        return np.linspace(lo, hi, 2)
    width = (hi - lo) / (math.log2(ref.n + cur.n) + 1.0)
    bins = math.ceil((hi - lo) / width)
    return np.linspace(lo, hi, bins + 1)


def _histogram(s: NumericSample, edges: np.ndarray) -> np.ndarray:
    return np.histogram(s.values, edges, weights=s.weights)[0].astype(np.float64)


def binned_shares(reference: Any, current: Any, kind: Kind) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's get_binned_data without the zero filling: (ref shares, cur shares)."""
    if kind == "numerical":
        ref, cur = _as_numeric(reference), _as_numeric(current)
        _need(ref.n, cur.n, "binning")
        if ref.distinct is None or len(ref.distinct.keys) > 20:
            edges = _sturges_edges(ref, cur)
            return _histogram(ref, edges) / ref.n, _histogram(cur, edges) / cur.n
        if cur.distinct is not None:
            return _aligned_shares(ref.distinct, cur.distinct)
        # Few values in the reference, many in the current: compare value by value anyway.
        vals, cnt = np.unique(cur.values, return_counts=True)
        return _aligned_shares(ref.distinct, Counts.of({_num_key(v): c for v, c in zip(vals, cnt, strict=True)}))
    return _aligned_shares(_as_counts(reference), _as_counts(current))


def _aligned_shares(ref: Counts, cur: Counts) -> tuple[np.ndarray, np.ndarray]:
    _need(ref.n, cur.n, "binning")
    keys = sorted(set(ref.keys) | set(cur.keys))
    rd, cd = ref.as_dict(), cur.as_dict()
    r = np.array([rd.get(k, 0) for k in keys], dtype=np.float64) / ref.n
    c = np.array([cd.get(k, 0) for k in keys], dtype=np.float64) / cur.n
    return r, c


def _fill_zeroes(p: np.ndarray) -> np.ndarray:
    p = p.copy()
    low = p[p != 0].min()
    p[p == 0] = low / 10**6 if low <= 0.0001 else 0.0001
    return p


def _kind_of(x: Any) -> Kind:
    return "categorical" if isinstance(x, Counts) else "numerical" if isinstance(x, NumericSample) else _guess(x)


def _guess(x: Any) -> Kind:
    arr = np.asarray(x)
    return "numerical" if arr.dtype.kind in "biuf" else "categorical"


def _n(x: Any) -> int:
    if isinstance(x, NumericSample | Counts):
        return x.n
    return len(_as_numeric(x).values) if _guess(x) == "numerical" else _as_counts(x).n


def psi(reference: Any, current: Any, threshold: float) -> StatTestResult:
    """Population stability index: sum((ref - cur) * ln(ref / cur)) over bins."""
    kind = _kind_of(reference)
    r, c = binned_shares(reference, current, kind)
    r, c = _fill_zeroes(r), _fill_zeroes(c)
    return _d_result("psi", float(np.sum((r - c) * np.log(r / c))), threshold, _n(reference), _n(current))


def jensenshannon(reference: Any, current: Any, threshold: float) -> StatTestResult:
    """Jensen-Shannon distance (natural log), sqrt of the JS divergence."""
    kind = _kind_of(reference)
    r, c = binned_shares(reference, current, kind)
    return _d_result("jensenshannon", js_distance(r, c), threshold, _n(reference), _n(current))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2.0
    js = (np.sum(special.rel_entr(p, m)) + np.sum(special.rel_entr(q, m))) / 2.0
    return float(math.sqrt(max(js, 0.0)))


def hellinger(reference: Any, current: Any, threshold: float) -> StatTestResult:
    """Hellinger distance: sqrt(1 - sum sqrt(p * q)) over category shares or Sturges
    density bins over the range of the distinct values (Evidently's definition)."""
    kind = _kind_of(reference)
    if kind == "categorical":
        r, c = _aligned_shares(_as_counts(reference), _as_counts(current))
        bc = float(np.sum(np.sqrt(r * c)))
    else:
        ref, cur = _as_numeric(reference), _as_numeric(current)
        _need(ref.n, cur.n, "hellinger")
        lo, hi = min(ref.values[0], cur.values[0]), max(ref.values[-1], cur.values[-1])
        # Evidently bins the *distinct* values' range with Sturges on their count.
        n_keys = len(np.union1d(ref.values, cur.values))
        edges = np.histogram_bin_edges(np.array([lo, hi]), bins=_sturges_bins(lo, hi, n_keys), range=(lo, hi))
        width = (edges[-1] - edges[0]) / (len(edges) - 1)
        h1 = _histogram(ref, edges) / (ref.n * np.diff(edges))
        h2 = _histogram(cur, edges) / (cur.n * np.diff(edges))
        bc = float(np.sum(np.sqrt(h1 * h2)) * width)
    return _d_result("hellinger", math.sqrt(1.0 - min(max(bc, 0.0), 1.0)), threshold, _n(reference), _n(current))


def _sturges_bins(lo: float, hi: float, n: int) -> int:
    if lo == hi:
        return 1
    width = (hi - lo) / (math.log2(n) + 1.0)
    return math.ceil((hi - lo) / width)


# -- categories only -----------------------------------------------------------------


def chisquare(reference: Any, current: Any, threshold: float) -> StatTestResult:
    """Pearson's chi-square of the current counts against the reference's shares.

    A category the reference never saw has an expected count of 0: the statistic is
    infinite and p is 0 (scipy would divide by zero); the effect floor then decides
    whether that new category matters."""
    ref, cur = _as_counts(reference), _as_counts(current)
    _need(ref.n, cur.n, "chisquare")
    keys = sorted(set(ref.keys) | set(cur.keys))
    rd, cd = ref.as_dict(), cur.as_dict()
    f_exp = np.array([rd.get(k, 0) for k in keys], dtype=np.float64) * (cur.n / ref.n)
    f_obs = np.array([cd.get(k, 0) for k in keys], dtype=np.float64)
    if np.any((f_exp == 0) & (f_obs > 0)):
        return _p_result("chisquare", math.inf, 0.0, threshold, ref.n, cur.n)
    keep = f_exp > 0
    if keep.sum() < 2:
        return _p_result("chisquare", 0.0, 1.0, threshold, ref.n, cur.n)
    res = stats.chisquare(f_obs[keep], f_exp[keep])
    return _p_result("chisquare", res.statistic, res.pvalue, threshold, ref.n, cur.n)


def z(reference: Any, current: Any, threshold: float) -> StatTestResult:
    """Two-proportion z test on the share of the first (sorted) category."""
    ref, cur = _as_counts(reference), _as_counts(current)
    _need(ref.n, cur.n, "z")
    keys = sorted(set(ref.keys) | set(cur.keys))
    if len(keys) == 1:
        return _p_result("z", 0.0, 1.0, threshold, ref.n, cur.n)
    first = keys[0]
    n1, n2 = ref.n, cur.n
    p1 = (n1 - ref.as_dict().get(first, 0)) / n1
    p2 = (n2 - cur.as_dict().get(first, 0)) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    stat = (p1 - p2) / se if se > 0 else 0.0
    return _p_result("z", stat, 2 * (1 - stats.norm.cdf(abs(stat))), threshold, n1, n2)
