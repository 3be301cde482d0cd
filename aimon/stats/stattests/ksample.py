"""Anderson-Darling k-sample and Epps-Singleton, the two numerical tests Evidently has
beyond KS, Wasserstein and Cramér-von Mises (its "anderson" and "es").

Both need the rows themselves: on exact samples they are scipy's `anderson_ksamp`
(midrank variant, as Evidently calls it) and `epps_singleton_2samp`, so the p-values
are scipy's and Evidently's. scipy interpolates the Anderson-Darling p-value in a table
and caps it to [0.001, 0.25]. A reference *sketch* (weighted quantile points) is read
back as SKETCH_ROWS evenly spaced quantiles of its distribution (at most its n) and
tested as a sample of that many rows: its p-value is conservative (fewer rows than the
reference holds). docs/analyses/drift.md.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import stats

from aimon.stats.stattests.results import StatTestResult, _need, _p_result
from aimon.stats.stattests.samples import NumericSample, _as_numeric

SKETCH_ROWS = 20_000


def _rows(x: NumericSample) -> np.ndarray:
    """The rows of an exact sample; of a sketch, min(n, SKETCH_ROWS) evenly spaced
    quantiles of its weighted distribution."""
    if x.exact:
        return x.values
    m = min(x.n, SKETCH_ROWS)
    cum = x.cum_weights()
    at = np.searchsorted(cum / cum[-1], (np.arange(m) + 0.5) / m, side="left")
    return x.values[np.minimum(at, len(x.values) - 1)]


def anderson_darling(reference: Any, current: Any, threshold: float) -> StatTestResult:
    """Anderson-Darling k-sample test of the two sides (scipy's anderson_ksamp, midrank)."""
    ref, cur = _as_numeric(reference), _as_numeric(current)
    _need(ref.n, cur.n, "anderson")
    a, b = _rows(ref), _rows(cur)
    if len(np.unique(np.concatenate([a, b]))) < 2:
        raise ValueError("anderson: both samples hold one and the same value; there is no distribution to compare")
    with warnings.catch_warnings():
        # "p-value capped/floored": the table ends at 0.001 and 0.25, said in the docstring.
        warnings.simplefilter("ignore", UserWarning)
        res = stats.anderson_ksamp([a, b], variant="midrank")
    return _p_result("anderson", res.statistic, res.pvalue, threshold, ref.n, cur.n)


def epps_singleton(reference: Any, current: Any, threshold: float) -> StatTestResult:
    """Epps-Singleton test on the empirical characteristic functions (scipy's
    epps_singleton_2samp, at its default points scaled by the pooled IQR)."""
    ref, cur = _as_numeric(reference), _as_numeric(current)
    _need(ref.n, cur.n, "es")
    a, b = _rows(ref), _rows(cur)
    if min(len(a), len(b)) < 5:
        raise ValueError(f"es: needs at least 5 values a side (reference {len(a)}, current {len(b)})")
    iqr = float(stats.iqr(np.concatenate([a, b])))
    if iqr == 0:
        raise ValueError("es: the pooled interquartile range is 0 (the middle half of the values is one value)")
    res = stats.epps_singleton_2samp(a, b)
    return _p_result("es", res.statistic, res.pvalue, threshold, ref.n, cur.n)
