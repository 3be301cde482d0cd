"""Numerical drift tests on two `NumericSample`s, from their pooled empirical CDFs:
Kolmogorov-Smirnov, Wasserstein, Cramér-von Mises.

Definitions follow Evidently 0.7 so the figures mean what its users expect:
``wasserstein`` is scipy's W1 divided by the reference's population std (floored at
0.001). Each statistic works on exact samples and on reference sketches alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats

from aimon.stats.stattests.results import StatTestResult, _d_result, _need, _p_result
from aimon.stats.stattests.samples import NumericSample, _as_numeric

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


def ks(reference: Any, current: Any, threshold: float) -> StatTestResult:
    """Two-sample Kolmogorov-Smirnov (scipy's ks_2samp)."""
    ref, cur = _as_numeric(reference), _as_numeric(current)
    _need(ref.n, cur.n, "ks")
    d = ks_statistic(ref, cur)
    pair = (ref.values, cur.values) if ref.exact and cur.exact else None
    return _p_result("ks", d, ks_p_value(d, ref.n, cur.n, pair), threshold, ref.n, cur.n)


def wasserstein_raw(ref: NumericSample, cur: NumericSample) -> float:
    return ks_and_w1(ref, cur)[1]


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
