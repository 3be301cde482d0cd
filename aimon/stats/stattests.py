"""Two-sample drift tests: each a plain function ``(reference, current, threshold) -> StatTestResult``,
registered by name (Evidently's layout, ``legacy/calculations/stattests``).

A numerical side is a `NumericSample`: sorted values with optional weights. An exact
sample has no weights (each value is one row); a reference *sketch* keeps a fixed
number of quantile points that each stand for ``n / size`` rows, so a reference of
seven days is summarised once and never re-read (tasks/drift_cache.py). Statistics on
an exact sample equal scipy's / Evidently's; on a sketch the empirical CDF is off by
at most ``1 / sketch size`` (documented in the README), while p-values use the true
row counts. A categorical side is `Counts`.

Definitions follow Evidently 0.7 so the figures mean what its users expect:
- ``wasserstein``: scipy's W1 divided by the reference's population std (floored at 0.001);
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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import special, stats

Kind = Literal["numerical", "categorical"]


# -- samples -----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class NumericSample:
    """Sorted finite values; `weights[i]` rows stand behind `values[i]` (None: one each)."""

    values: np.ndarray
    weights: np.ndarray | None
    n: int  # rows summarised
    mean: float
    std: float  # population std (ddof=0), as Evidently normalises Wasserstein
    distinct: Counts | None = None  # exact value counts when there are at most MAX_DISCRETE values

    @property
    def exact(self) -> bool:
        return self.weights is None

    def cum_weights(self) -> np.ndarray:
        return np.arange(1, len(self.values) + 1, dtype=np.float64) if self.weights is None else np.cumsum(self.weights)

    def weight_array(self) -> np.ndarray:
        return np.ones(len(self.values)) if self.weights is None else self.weights


@dataclass(frozen=True, eq=False)
class Counts:
    """Category -> rows, categories as strings (sorted)."""

    keys: tuple[str, ...]
    counts: np.ndarray  # int64, aligned with keys

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def as_dict(self) -> dict[str, int]:
        return {k: int(c) for k, c in zip(self.keys, self.counts, strict=True)}

    @classmethod
    def of(cls, mapping: Mapping[Any, float]) -> Counts:
        items = sorted((str(k), int(v)) for k, v in mapping.items() if v)
        return cls(tuple(k for k, _ in items), np.array([v for _, v in items], dtype=np.int64))


MAX_DISCRETE = 20  # keep exact value counts up to this many distinct values (Evidently's 20 and 5 rules)


def numeric_sample(values: Any) -> NumericSample:
    """An exact sample from raw values (NaN and inf dropped)."""
    x = np.asarray(values, dtype=np.float64)
    x = np.sort(x[np.isfinite(x)])
    return sample_from_sorted(x)


def sample_from_sorted(x: np.ndarray) -> NumericSample:
    n = len(x)
    distinct = None
    # A strided look first: more than MAX_DISCRETE distinct values in every 1000th row
    # means more in the whole, without a full pass.
    if n and len(np.unique(x[:: max(1, n // 1000)])) <= MAX_DISCRETE:
        edges = np.flatnonzero(x[1:] != x[:-1])
        if len(edges) < MAX_DISCRETE:
            starts = np.concatenate([[0], edges + 1])
            sizes = np.diff(np.concatenate([starts, [n]]))
            distinct = Counts.of({_num_key(x[s]): c for s, c in zip(starts, sizes, strict=True)})
    return NumericSample(
        x, None, n, float(x.mean()) if n else math.nan, float(x.std()) if n else math.nan, distinct=distinct
    )


def _num_key(v: float) -> str:
    return repr(float(v))


def sketch(sample: NumericSample, size: int) -> NumericSample:
    """A summary of at most 2 * `size` + 2 points that stands for every row.

    - The sample itself when it has at most `size` + 2 points.
    - Its distinct values weighted by their rows when there are at most `size` of them
      (token counts, ratings, rounded figures): lossless.
    - Else `size` slices of (about) equal weight, whole rows each. A slice is one point,
      the mean of its rows (so W1 is kept far better than by point quantiles, and every
      point stays inside its slice: the CDF is off by at most 1/size + one row). The
      slices that matter most for W1 — weight x value range, i.e. the long tails of
      latencies and costs — keep their rows instead, up to `size` rows in all: that
      cuts the sketch's own W1 error ~15x on a lognormal latency. The minimum and
      maximum ride along with zero weight, so binned methods see the true range."""
    if len(sample.values) <= size + 2:
        return sample
    x = sample.values
    w = sample.weight_array()
    cw = np.concatenate([[0.0], np.cumsum(w)])
    last = np.flatnonzero(np.concatenate([x[1:] != x[:-1], [True]]))
    if len(last) <= size:
        return NumericSample(
            x[last], np.diff(cw[np.concatenate([[0], last + 1])]), sample.n, sample.mean, sample.std, sample.distinct
        )
    n, total = len(x), cw[-1]
    bounds = np.unique(np.searchsorted(cw, np.linspace(0.0, total, size + 1), side="left").clip(0, n))
    bounds[0], bounds[-1] = 0, n
    start, end = bounds[:-1], bounds[1:]
    mass = cw[end] - cw[start]
    cost = mass * (x[end - 1] - x[start])
    order = np.argsort(-cost, kind="stable")
    raw = np.zeros(len(start), dtype=bool)
    raw[order[np.cumsum((end - start)[order]) <= size]] = True
    area = np.concatenate([[0.0], np.cumsum(w * x)])
    keep = ~raw
    means = (area[end[keep]] - area[start[keep]]) / mass[keep]
    lengths = (end - start)[raw]
    rows = np.repeat(start[raw] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(lengths.sum())
    vals = np.concatenate([[x[0]], np.clip(means, x[0], x[-1]), x[rows], [x[-1]]])
    weights = np.concatenate([[0.0], mass[keep], w[rows], [0.0]])
    order = np.argsort(vals, kind="stable")
    return NumericSample(vals[order], weights[order], sample.n, sample.mean, sample.std, distinct=sample.distinct)


def merge_samples(parts: Iterable[NumericSample]) -> NumericSample:
    """Pool samples (e.g. one per reference window): exact when every part is exact."""
    parts = [p for p in parts if p.n]
    if not parts:
        return numeric_sample([])
    if len(parts) == 1:
        return parts[0]
    vals = np.concatenate([p.values for p in parts])
    order = np.argsort(vals, kind="stable")
    exact = all(p.exact for p in parts)
    weights = None if exact else np.concatenate([p.weight_array() for p in parts])[order]
    n = sum(p.n for p in parts)
    mean = sum(p.n * p.mean for p in parts) / n
    var = sum(p.n * (p.std**2 + (p.mean - mean) ** 2) for p in parts) / n
    distinct = None
    if all(p.distinct is not None for p in parts):
        merged = merge_counts([p.distinct for p in parts if p.distinct is not None])
        distinct = merged if len(merged.keys) <= MAX_DISCRETE else None
    return NumericSample(vals[order], weights, n, mean, math.sqrt(max(var, 0.0)), distinct=distinct)


def counts(values: Any) -> Counts:
    """Category counts of raw values (None/NaN dropped), keys as strings."""
    import pandas as pd

    s = pd.Series(values, dtype="object").dropna()
    return Counts.of(s.astype(str).value_counts().to_dict())


def merge_counts(parts: Iterable[Counts]) -> Counts:
    total: dict[str, int] = {}
    for p in parts:
        for k, c in zip(p.keys, p.counts, strict=True):
            total[k] = total.get(k, 0) + int(c)
    return Counts.of(total)


def _as_numeric(x: Any) -> NumericSample:
    return x if isinstance(x, NumericSample) else numeric_sample(x)


def _as_counts(x: Any) -> Counts:
    if isinstance(x, Counts):
        return x
    if isinstance(x, NumericSample):
        if x.distinct is None:
            raise ValueError("a numerical feature with more than 20 distinct values cannot be tested as categories")
        return x.distinct
    return counts(x)


# -- results and registry ---------------------------------------------------------


@dataclass(frozen=True)
class StatTestResult:
    """One test on one feature, carrying what produced it (so a notification explains itself)."""

    method: str
    statistic: float
    p_value: float | None  # None for distances
    threshold: float
    drifted: bool  # p_value < threshold, or statistic >= threshold for a distance
    n_reference: int
    n_current: int

    @property
    def uses_p_value(self) -> bool:
        return self.p_value is not None


StatTestFunc = Callable[[Any, Any, float], StatTestResult]


@dataclass(frozen=True)
class StatTest:
    name: str
    func: StatTestFunc
    kinds: tuple[Kind, ...]
    p_value: bool  # True: drift when p < threshold; False: a distance, drift when >= threshold
    default_threshold: float

    def __call__(self, reference: Any, current: Any, threshold: float | None = None) -> StatTestResult:
        return self.func(reference, current, self.default_threshold if threshold is None else threshold)


STATTESTS: dict[str, StatTest] = {}


def register(name: str, kinds: tuple[Kind, ...], p_value: bool, default_threshold: float) -> Callable[..., Any]:
    def deco(func: StatTestFunc) -> StatTestFunc:
        STATTESTS[name] = StatTest(name, func, kinds, p_value, default_threshold)
        return func

    return deco


def get_stattest(name: str) -> StatTest:
    try:
        return STATTESTS[name]
    except KeyError:
        raise KeyError(f"unknown drift method {name!r}; valid: {', '.join(sorted(STATTESTS))}") from None


def _p_result(method: str, stat: float, p: float, threshold: float, n_ref: int, n_cur: int) -> StatTestResult:
    p = float(min(max(p, 0.0), 1.0))
    return StatTestResult(method, float(stat), p, threshold, p < threshold, n_ref, n_cur)


def _d_result(method: str, stat: float, threshold: float, n_ref: int, n_cur: int) -> StatTestResult:
    return StatTestResult(method, float(stat), None, threshold, bool(stat >= threshold), n_ref, n_cur)


def _need(ref_n: int, cur_n: int, method: str) -> None:
    if ref_n == 0 or cur_n == 0:
        raise ValueError(f"{method}: both samples need at least one value (reference {ref_n}, current {cur_n})")


# -- numerical: pooled empirical CDFs ---------------------------------------------


@dataclass(frozen=True, eq=False)
class _Pooled:
    values: np.ndarray  # pooled sorted values
    diff: np.ndarray  # F_ref - F_cur just after each pooled position
    last: np.ndarray  # True where the next pooled value differs (the CDFs are exact there)


def _pool(ref: NumericSample, cur: NumericSample) -> _Pooled:
    """Merge two sorted samples without re-sorting: each side's position in the merge
    follows from a binary search in the other, so the cost is a search, not a sort."""
    r, c = ref.values, cur.values
    m, n = len(r), len(c)
    # Reference values go before equal current ones; the current values fill the rest
    # in order, so only the (usually smaller) reference side is searched.
    pos_r = np.arange(m) + np.searchsorted(c, r, side="left")
    is_cur = np.ones(m + n, dtype=bool)
    is_cur[pos_r] = False
    vals = np.empty(m + n)
    vals[pos_r] = r
    vals[is_cur] = c
    wr, wc = ref.weight_array(), cur.weight_array()
    step = np.empty(m + n)
    step[is_cur] = -wc / wc.sum()
    step[pos_r] = wr / wr.sum()
    diff = np.cumsum(step, out=step)  # in place: at 10M rows every temporary is 80 MB
    last = np.empty(m + n, dtype=bool)
    np.not_equal(vals[1:], vals[:-1], out=last[:-1])
    last[-1] = True
    return _Pooled(vals, diff, last)


def ks_statistic(ref: NumericSample, cur: NumericSample) -> float:
    return ks_and_w1(ref, cur)[0]


def ks_p_value(d: float, n_ref: int, n_cur: int, exact_pair: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """scipy's ks_2samp p-value: exact for small samples (both <= 10000 rows, when the
    raw values are at hand), else the asymptotic Kolmogorov distribution on round(en)."""
    if exact_pair is not None and max(n_ref, n_cur) <= 10_000:
        return float(stats.ks_2samp(*exact_pair).pvalue)
    m, n = sorted([float(n_ref), float(n_cur)], reverse=True)
    en = m * n / (m + n)
    return float(np.clip(stats.distributions.kstwo.sf(d, np.round(en)), 0, 1))


@register("ks", ("numerical",), p_value=True, default_threshold=0.05)
def ks(reference: Any, current: Any, threshold: float) -> StatTestResult:
    """Two-sample Kolmogorov-Smirnov (scipy's ks_2samp)."""
    ref, cur = _as_numeric(reference), _as_numeric(current)
    _need(ref.n, cur.n, "ks")
    d = ks_statistic(ref, cur)
    pair = (ref.values, cur.values) if ref.exact and cur.exact else None
    return _p_result("ks", d, ks_p_value(d, ref.n, cur.n, pair), threshold, ref.n, cur.n)


def wasserstein_raw(ref: NumericSample, cur: NumericSample) -> float:
    return ks_and_w1(ref, cur)[1]


@register("wasserstein", ("numerical",), p_value=False, default_threshold=0.1)
def wasserstein(reference: Any, current: Any, threshold: float) -> StatTestResult:
    """W1 distance divided by the reference's population std (floored at 0.001), as Evidently."""
    ref, cur = _as_numeric(reference), _as_numeric(current)
    _need(ref.n, cur.n, "wasserstein")
    norm = max(ref.std, 0.001)
    return _d_result("wasserstein", wasserstein_raw(ref, cur) / norm, threshold, ref.n, cur.n)


def ks_and_wasserstein(ref: NumericSample, cur: NumericSample) -> tuple[float, float]:
    """KS D and normalised Wasserstein: the drift analyzer's hot path."""
    d, w1 = ks_and_w1(ref, cur)
    return d, w1 / max(ref.std, 0.001)


def ks_and_w1(ref: NumericSample, cur: NumericSample) -> tuple[float, float]:
    """KS D and raw W1 in O(m log n + n) from the sorted samples, without merging.

    Between two reference values F_ref is constant, so the KS supremum sits at the
    reference values or just below them, and the integral of |F_ref - F_cur| splits at
    the point where F_cur crosses F_ref, using G(x) = integral of F_cur up to x =
    (W_k x - S_k) / W with W_k, S_k the current side's prefix weight and weighted sum."""
    r, c = ref.values, cur.values
    wr = ref.weight_array()
    last = np.empty(len(r), dtype=bool)
    np.not_equal(r[1:], r[:-1], out=last[:-1])
    last[-1] = True
    u = r[last]
    big_r = np.cumsum(wr)[last] / wr.sum()  # F_ref at each distinct reference value
    shift = float(u[0])  # subtract an offset so the prefix sums keep their precision
    if cur.weights is None:
        cw = np.arange(len(c) + 1, dtype=np.float64)
        s = np.concatenate([[0.0], np.cumsum(c - shift)])
    else:
        cw = np.concatenate([[0.0], np.cumsum(cur.weights)])
        s = np.concatenate([[0.0], np.cumsum(cur.weights * (c - shift))])
    total_w = cw[-1]
    cr = cw[np.searchsorted(c, u, side="right")] / total_w  # F_cur at u
    cl = cw[np.searchsorted(c, u, side="left")] / total_w  # F_cur just below u
    prev = np.concatenate([[0.0], big_r[:-1]])
    d = float(max(np.abs(big_r - cr).max(), np.abs(prev - cl).max(), 0.0))
    uu = u - shift

    def g(x: np.ndarray) -> np.ndarray:
        k = np.searchsorted(c, x + shift, side="right")
        return (cw[k] * x - s[k]) / total_w  # type: ignore[no-any-return]

    c_hi = c[-1] - shift
    total = float(g(np.array([uu[0]]))[0])  # below the first reference value F_ref = 0
    if len(uu) > 1:
        a, b, rr = uu[:-1], uu[1:], big_r[:-1]
        # First current value where F_cur reaches F_ref (cw[j] is the weight up to and including c[j-1]).
        j = np.clip(np.searchsorted(cw, rr * total_w * (1 - 1e-12), side="left"), 1, len(c))
        xs = np.clip(c[j - 1] - shift, a, b)
        ga, gb, gx = g(a), g(b), g(xs)
        total += float(np.sum(rr * (xs - a) - (gx - ga) + (gb - gx) - rr * (b - xs)))
    top = uu[-1]
    if c_hi > top:  # above the last reference value F_ref = 1
        total += (c_hi - top) - float(g(np.array([c_hi]))[0] - g(np.array([top]))[0])
    return d, total


def _cdf_cvm_inf(x: float) -> float:
    """CDF of the limiting Cramér-von Mises distribution (Csörgő & Faraway 1996, eq. 1.2),
    summed until the terms are below 1e-7: scipy's `_cdf_cvm_inf`."""
    tot, k = 0.0, 0
    while True:
        u = math.exp(special.gammaln(k + 0.5) - special.gammaln(k + 1)) / (math.pi**1.5 * math.sqrt(x))
        y = 4 * k + 1
        q = y**2 / (16 * x)
        z = u * math.sqrt(y) * math.exp(-q) * special.kv(0.25, q)
        tot += z
        if abs(z) < 1e-7:
            return tot
        k += 1


@register("cramer_von_mises", ("numerical",), p_value=True, default_threshold=0.05)
def cramer_von_mises(reference: Any, current: Any, threshold: float) -> StatTestResult:
    """Two-sample Cramér-von Mises (scipy's cramervonmises_2samp: midranks for ties,
    exact p for at most 20 values a side, else Anderson's normalised asymptotic)."""
    ref, cur = _as_numeric(reference), _as_numeric(current)
    _need(ref.n, cur.n, "cramer_von_mises")
    nx, ny = ref.n, cur.n
    if ref.exact and max(nx, ny) <= 20:
        res = stats.cramervonmises_2samp(ref.values, cur.values)
        return _p_result("cramer_von_mises", res.statistic, res.pvalue, threshold, nx, ny)
    p = _pool(ref, cur)
    k, big_n = nx * ny, nx + ny
    if ref.exact and cur.exact:
        t = _cvm_from_midranks(ref, cur, p) / (k * big_n) - (4 * k - 1) / (6 * big_n)
    else:
        # A sketch has no ranks: T = (mn/N^2) * sum over the pooled rows of (F_ref - F_cur)^2,
        # the ECDF form of the same statistic (equal to the rank form without ties).
        wr = ref.weight_array()
        rows = np.empty(len(p.values))
        is_ref = np.zeros(len(p.values), dtype=bool)
        pos_r = np.arange(len(ref.values)) + np.searchsorted(cur.values, ref.values, side="left")
        is_ref[pos_r] = True
        rows[is_ref] = wr
        rows[~is_ref] = cur.weight_array()
        # CDFs at a tie are those after the whole tie group.
        grp_end = np.flatnonzero(p.last)
        group_diff = np.repeat(p.diff[grp_end], np.diff(np.concatenate([[-1], grp_end])))
        t = k / big_n**2 * float(np.sum(rows * group_diff**2))
    et = (1 + 1 / big_n) / 6
    vt = (big_n + 1) * (4 * k * big_n - 3 * (nx**2 + ny**2) - 2 * k) / (45 * big_n**2 * 4 * k)
    tn = 1 / 6 + (t - et) / math.sqrt(45 * vt)
    pv = 1.0 if tn < 0.003 else max(0.0, 1.0 - _cdf_cvm_inf(tn))
    return _p_result("cramer_von_mises", t, pv, threshold, nx, ny)


def _cvm_from_midranks(ref: NumericSample, cur: NumericSample, p: _Pooled) -> float:
    """U of Anderson (1962) with midranks, from the merge (no second sort)."""
    n_all = len(p.values)
    grp_end = np.flatnonzero(p.last)
    grp_start = np.concatenate([[0], grp_end[:-1] + 1])
    midrank = np.repeat((grp_start + grp_end + 2) / 2.0, grp_end - grp_start + 1)  # 1-based
    is_ref = np.zeros(n_all, dtype=bool)
    is_ref[np.arange(len(ref.values)) + np.searchsorted(cur.values, ref.values, side="left")] = True
    rx, ry = midrank[is_ref], midrank[~is_ref]
    nx, ny = len(rx), len(ry)
    return float(nx * np.sum((rx - np.arange(1, nx + 1)) ** 2) + ny * np.sum((ry - np.arange(1, ny + 1)) ** 2))


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


@register("psi", ("numerical", "categorical"), p_value=False, default_threshold=0.1)
def psi(reference: Any, current: Any, threshold: float) -> StatTestResult:
    """Population stability index: sum((ref - cur) * ln(ref / cur)) over bins."""
    kind = _kind_of(reference)
    r, c = binned_shares(reference, current, kind)
    r, c = _fill_zeroes(r), _fill_zeroes(c)
    return _d_result("psi", float(np.sum((r - c) * np.log(r / c))), threshold, _n(reference), _n(current))


@register("jensenshannon", ("numerical", "categorical"), p_value=False, default_threshold=0.1)
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


@register("hellinger", ("numerical", "categorical"), p_value=False, default_threshold=0.1)
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


@register("chisquare", ("categorical",), p_value=True, default_threshold=0.05)
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


@register("z", ("categorical",), p_value=True, default_threshold=0.05)
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


# -- multiple testing --------------------------------------------------------------


def benjamini_hochberg(p_values: Iterable[float]) -> np.ndarray:
    """BH-adjusted p-values (step-up, monotone, capped at 1)."""
    p = np.asarray(list(p_values), dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out
