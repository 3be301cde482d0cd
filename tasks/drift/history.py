"""Drift's own history: the learned bounds, and the windows left out of a reference.

A drift score always wobbles a little from window to window (traffic mix, a slow
random walk in latency, sampling noise), and how much depends on the feature. A fixed
floor that is right for one feature pages every few weeks on another, so in
`drift.thresholds.mode: learned` each feature is judged against a bound learned from
its own stored past scores (NannyML's idea):

    bound = max(floor, median + k x (q - median))    of the previous `windows` scores,
                                                     q their `quantile` (0.9)

where a score is the feature's effect (normalised Wasserstein, Jensen-Shannon; the
`data_drift_score` figure of its effect method) against the reference of its window.
With `thresholds.scale: rows` (the default) a second bound is learned from the *scaled*
scores, effect x sqrt(n m / (n + m)) at each window's own sizes
(`data_drift_scaled_score`), turned back into an effect at this window's sizes, and the
wider of the two is used (scaled_bound). Sampling noise shrinks as 1 / sqrt(rows): a
thin Saturday's effect wobbles twice as much as a weekday's, and a bound learned from
the raw effects of a weekday-heavy history put two such Saturdays of a simulated year
over it.
Order statistics, not mean and standard deviation: one spike day among 28 moves the
median and the 90th percentile by one rank at most, so the bound is not raised by the
incident it should catch. Not median + k MAD either: weekly seasonality makes the
scores bimodal (weekend windows differ more from a weekday-heavy reference), and a MAD
taken from the weekday majority puts every odd weekend in the tail; the 90th
percentile sits inside the weekend mode. For half-normal scores (the distance of a
random walk's step) k = 3 puts the bound at 3.6 sigma. Windows where the feature
drifted are left out of the history too. With fewer than `min_windows` past scores the
bound is the floor times `cold_start_factor` ("cold start": stricter than the floor,
since the wobble is not known yet).

The same stored figures say which reference windows drifted (data_drift_detected 1,
embedding_drift_detected 1); fit.pooled_reference leaves them out of that feature's
reference.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from aimon.config.analyses import DriftConfig
from aimon.store.metrics import Store
from aimon.windows import Window, previous_windows

SCALED = "scaled:"  # the history key prefix of a feature's size-scaled scores (data_drift_scaled_score)
EMBEDDING = "__embedding__"  # the history key of the embedding verdict (domain classifier AUC)
AUC_Z = "auc_z"  # its learned bound's scores: embedding_drift_auc_z (the AUC in null-spread units)


@dataclass(frozen=True)
class Bound:
    """The bound a score is judged against, and what it came from."""

    value: float
    # "learned", "learned at this window's size" (the size-scaled bound, wider: a thin
    # window), "floor" (the learned value was below it), "cold start", "fixed"
    basis: str
    history: int  # past scores it was learned from
    median: float | None = None
    spread: float | None = None  # q - median

    def describe(self) -> str:
        if self.basis in ("learned", "floor", "learned at this window's size"):
            return f"bound {self.value:.3g} ({self.basis}, from {self.history} past windows)"
        if self.basis == "cold start":
            return f"bound {self.value:.3g} (cold start: {self.history} past windows)"
        return f"floor {self.value:g}"


def learned_bound(
    scores: Sequence[float],
    floor: float,
    k: float,
    min_windows: int,
    cold_start: float,
    quantile: float = 0.9,
) -> Bound:
    """max(floor, median + k x (q - median)) of `scores` (q: their `quantile`, numpy's
    linear interpolation), or `cold_start` with fewer than `min_windows` finite scores."""
    x = np.asarray([s for s in scores if np.isfinite(s)], dtype=np.float64)
    if len(x) < min_windows:
        return Bound(cold_start, "cold start", len(x))
    med, q = (float(v) for v in np.quantile(x, [0.5, quantile]))
    learned = med + k * (q - med)
    return Bound(max(floor, learned), "learned" if learned >= floor else "floor", len(x), med, q - med)


def size_scale(n_reference: int, n_current: int) -> float:
    """sqrt(n m / (n + m)): a two-sample distance between samples of one distribution
    shrinks as 1 / this (KS's D and the Wasserstein distance exactly, the Jensen-Shannon
    distance near zero), so effect x size_scale wobbles alike at any window size."""
    if n_reference <= 0 or n_current <= 0:
        return math.nan
    return math.sqrt(n_reference * n_current / (n_reference + n_current))


def scaled_bound(
    scaled: Sequence[float],
    raw: Sequence[float],
    scale: float,
    floor: float,
    k: float,
    min_windows: int,
    cold_start: float,
    quantile: float = 0.9,
) -> Bound:
    """The wider of two learned bounds: learned_bound of the past raw effects (`raw`),
    and learned_bound of the past *scaled* effects (effect x size_scale) divided by this
    window's size_scale; never below the floor. The scaled one is a thin window's:
    a 1,300-row Saturday is judged at the chance spread of 1,300 rows, not at that of the
    6,000-row weekdays most of its history is made of. The raw one is a thick window's:
    where the day-to-day change is real (a walk, a weekly swing) rather than sampling
    noise, scaling would tighten a 30,000-row weekday's bound below that change (seen:
    3 false drifts a year became 10). A store written before scaled scores were kept
    has only `raw` scores: those alone are used until `min_windows` scaled ones exist."""
    plain = learned_bound(raw, floor, k, min_windows, cold_start, quantile)
    z = [s for s in scaled if np.isfinite(s)]
    if len(z) < min_windows or not math.isfinite(scale) or scale <= 0 or plain.basis == "cold start":
        return plain
    zb = learned_bound(z, 0.0, k, min_windows, math.nan, quantile)
    assert zb.median is not None and zb.spread is not None
    learned = zb.value / scale
    if learned <= plain.value:
        return plain
    return Bound(learned, "learned at this window's size", zb.history, zb.median / scale, zb.spread / scale)


@dataclass(frozen=True)
class History:
    """Per feature (and EMBEDDING): past scores by window start, and the window starts
    where it drifted."""

    scores: dict[tuple[str, str], dict[dt.datetime, float]] = field(default_factory=dict)  # (feature, method)
    drifted: dict[str, set[dt.datetime]] = field(default_factory=dict)

    def past_scores(self, feature: str, method: str) -> list[float]:
        """The feature's stored scores of `method`, leaving out windows where it drifted."""
        bad = self.drifted.get(feature, set())
        return [v for start, v in sorted(self.scores.get((feature, method), {}).items()) if start not in bad]


def read_history(store: Store, window: Window, dcfg: DriftConfig, reference: Sequence[Window]) -> History:
    """The stored drift figures the learned bounds and the reference exclusions need:
    scores over the previous thresholds.windows windows, verdicts over those and the
    reference windows. Figures of the window itself (a rerun) are never read."""
    # The learned bound's windows, oldest first.
    span = previous_windows(window, dcfg.thresholds.windows)[::-1] if dcfg.thresholds.mode == "learned" else []
    starts = [w.start for w in [*span, *reference] if w.start < window.start]
    if not starts:
        return History()
    lo = min(starts)
    g = window.granularity

    def figs(metric: str):  # type: ignore[no-untyped-def]
        return store.figures(granularity=g, metric=metric, start_from=lo, before=window.start)

    scores: dict[tuple[str, str], dict[dt.datetime, float]] = {}
    drifted: dict[str, set[dt.datetime]] = {}
    if span:
        first = span[0].start
        for metric, prefix in (("data_drift_score", ""), ("data_drift_scaled_score", SCALED)):
            for f in figs(metric):
                if f.window_start >= first and "feature" in f.labels and "method" in f.labels:
                    key = (f.labels["feature"], prefix + f.labels["method"])
                    scores.setdefault(key, {})[f.window_start] = f.value
        if dcfg.embeddings is not None:
            for f in figs("embedding_drift_auc_z"):
                if f.window_start >= first:
                    scores.setdefault((EMBEDDING, AUC_Z), {})[f.window_start] = f.value
    for f in figs("data_drift_detected"):
        if f.value >= 1 and "feature" in f.labels:
            drifted.setdefault(f.labels["feature"], set()).add(f.window_start)
    if dcfg.embeddings is not None:
        for f in figs("embedding_drift_detected"):
            if f.value >= 1:
                drifted.setdefault(EMBEDDING, set()).add(f.window_start)
    return History(scores, drifted)
