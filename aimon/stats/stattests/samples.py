"""The two sides a drift test compares: `NumericSample` (numerical) and `Counts`
(categorical), how they are built from raw values, sketched and merged.

A numerical side is a `NumericSample`: sorted values with optional weights. An exact
sample has no weights (each value is one row); a reference *sketch* keeps a fixed
number of quantile points that each stand for ``n / size`` rows, so a reference of
seven days is summarised once and never re-read (aimon.store.reference). Statistics on
an exact sample equal scipy's / Evidently's; on a sketch the empirical CDF is off by
at most ``1 / sketch size`` (documented in docs/analyses/drift.md), while p-values use the true
row counts. A categorical side is `Counts`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

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
