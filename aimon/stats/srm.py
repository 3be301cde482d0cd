"""Sample ratio mismatch: is an experiment's traffic split the configured one?

- `srm_test`   chi-square goodness of fit of the units per variant against the split.
- `srm_spans`  the same test on the cumulative counts and on the recent windows (a
               break late in a long experiment), Bonferroni across the spans.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class SrmResult:
    counts: tuple[int, ...]
    expected: tuple[float, ...]  # expected counts under the configured split
    statistic: float
    p_value: float
    threshold: float
    mismatch: bool


def srm_test(counts: Sequence[int], weights: Sequence[float], threshold: float = 0.001) -> SrmResult:
    """Chi-square goodness of fit of the observed units per variant against the
    expected split; a mismatch (p < threshold) means the assignment is broken."""
    obs = np.asarray(counts, dtype="float64")
    w = np.asarray(weights, dtype="float64")
    if len(obs) != len(w) or len(obs) < 2:
        raise ValueError("need one weight per variant and at least two variants")
    if (w <= 0).any():
        raise ValueError("split weights must be positive")
    total = obs.sum()
    exp = total * w / w.sum()
    if total == 0:
        return SrmResult(tuple(int(c) for c in counts), tuple(exp.tolist()), 0.0, 1.0, threshold, False)
    stat = float(((obs - exp) ** 2 / exp).sum())
    # One degree of freedom (two variants): the chi-square tail in closed form, ~50x
    # faster than scipy's, which matters when every look tests several spans.
    p = math.erfc(math.sqrt(stat / 2)) if len(obs) == 2 else float(stats.chi2.sf(stat, len(obs) - 1))
    return SrmResult(tuple(int(c) for c in counts), tuple(exp.tolist()), stat, p, threshold, p < threshold)


@dataclass(frozen=True)
class SrmSpan:
    """The SRM test of one span: the whole experiment (windows None) or its last
    `windows` windows."""

    windows: int | None
    result: SrmResult


def srm_spans(
    window_counts: Sequence[Sequence[int]] | np.ndarray,
    weights: Sequence[float],
    threshold: float = 0.001,
    recent: Sequence[int] = (1, 3, 7),
) -> tuple[SrmSpan, ...]:
    """The SRM chi-square test of the cumulative counts and of the last n windows for
    each n in `recent` (a span is left out while the experiment has no more than n
    windows: it would repeat the cumulative test).

    A cumulative test dilutes a break that starts late in a long experiment (20 days
    of 52/48 after 40 days of 50/50 are a 50.7/49.3 split overall); the recent spans
    do not. Each span is flagged at `threshold / spans tested` (Bonferroni), so at
    each look the chance that any span flags a true split is at most `threshold`:
    over a year of daily looks, at most 365 x threshold false flags (the 1-window span
    is a fresh test each window; the 7-window span's looks overlap, so its flags come
    in runs of one episode).

    `window_counts`: units per variant of each window, oldest first (one row per
    window, one column per variant, in the order of `weights`).
    """
    counts = np.asarray(window_counts, dtype="int64").reshape(-1, len(weights))
    looks = counts.shape[0]
    spans: list[int | None] = [None, *sorted({int(n) for n in recent if 0 < n < looks})]
    level = threshold / len(spans)
    out = []
    for n in spans:
        part = counts if n is None else counts[-n:]
        out.append(SrmSpan(n, srm_test(part.sum(axis=0).tolist(), weights, level)))
    return tuple(out)
