"""What a drift test returns, and the multiple-testing correction across features.

A `StatTestResult` carries what produced it (method, threshold, both sample sizes), so
a notification explains itself. The helpers build one from a p-value or a distance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

# -- results -----------------------------------------------------------------------


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


def _p_result(method: str, stat: float, p: float, threshold: float, n_ref: int, n_cur: int) -> StatTestResult:
    p = float(min(max(p, 0.0), 1.0))
    return StatTestResult(method, float(stat), p, threshold, p < threshold, n_ref, n_cur)


def _d_result(method: str, stat: float, threshold: float, n_ref: int, n_cur: int) -> StatTestResult:
    return StatTestResult(method, float(stat), None, threshold, bool(stat >= threshold), n_ref, n_cur)


def _need(ref_n: int, cur_n: int, method: str) -> None:
    if ref_n == 0 or cur_n == 0:
        raise ValueError(f"{method}: both samples need at least one value (reference {ref_n}, current {cur_n})")


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
