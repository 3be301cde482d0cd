"""Bounds learned from a series' own history, and the sampling error of a proportion.

Pure functions on a few dozen numbers (one series' previous windows), used by the alert
rules' `baseline.method: learned` and `baseline.uncertainty: binomial`
(aimon.config.alerts, docs/alerts.md "Learned bounds and minimum evidence").
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

# 1.4826 * MAD estimates sigma for normal data (1 / the normal's 75th percentile).
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Learned:
    """The centre and robust spread of a series' previous windows."""

    centre: float
    spread: float  # robust sigma of a window's value around the centre (floored)
    windows: int  # history values used
    seasonal: bool  # the centre is over same-phase windows only (same weekday / hour)
    log: bool = False  # centre and spread of log(values): the bound is centre x exp(+/- k x spread)


def _stdev(xs: Sequence[float]) -> float:
    """The sample standard deviation (n - 1) in floats: statistics.stdev is exact, in
    Fractions, and ~20x slower, which a report drawing thousands of bounds notices."""
    n = len(xs)
    mean = math.fsum(xs) / n
    return math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))


def _medians_without_each(values: Sequence[float]) -> list[float]:
    """For each i, the median of `values` without values[i], from one sort (the
    leave-one-out centres; sorting each of n sublists again was most of learn()).
    Removing the value at sorted position k shifts the ones above it down by one, so
    each rest's median is one of three values, picked by where k lies."""
    if len(values) < 2:
        raise ValueError("a median without each value needs at least two values")
    order = sorted(range(len(values)), key=values.__getitem__)
    s = [values[i] for i in order]
    m = len(s) - 1  # the size of each rest
    out = [0.0] * len(s)
    if m % 2:  # odd rest: its middle, s[j] or the one above it
        j = m // 2
        for k, i in enumerate(order):
            out[i] = s[j] if k > j else s[j + 1]
    else:  # even rest: the mean of its two middles, s[j - 1] and s[j] shifted where k is below
        j = m // 2
        below, at, above = (s[j - 1] + s[j]) / 2, (s[j - 1] + s[j + 1]) / 2, (s[j] + s[j + 1]) / 2
        for k, i in enumerate(order):
            out[i] = below if k > j else (at if k == j else above)
    return out


def trimmed_sigma(residuals: Sequence[float], cut: float = 3.5) -> float:
    """The standard deviation (n - 1) of the residuals within `cut` x 1.4826 MAD of
    their median: robust to a few odd windows like the MAD, but with nearly the
    efficiency of the plain SD on normal data, so a bound from 28 windows is not a
    lottery on the MAD's own noise. When the MAD is 0 (more than half the windows
    alike: an error rate that is 0 on most days and blips on some) the blips *are* the
    series' normal spread: the plain SD of all residuals."""
    if len(residuals) < 2:
        return 0.0
    med = statistics.median(residuals)
    mad = MAD_TO_SIGMA * statistics.median([abs(r - med) for r in residuals])
    if mad == 0:
        return _stdev(residuals)
    keep = [r for r in residuals if abs(r - med) <= cut * mad]
    return _stdev(keep) if len(keep) > 2 else mad


def learn(
    history: Sequence[float],
    *,
    phases: Sequence[int] | None = None,
    phase: int | None = None,
    min_same_phase: int = 3,
    min_relative_spread: float = 0.0,
    min_spread: float = 0.0,
    log: bool = False,
    absolute: bool = False,
) -> Learned:
    """Centre and spread of `history` (the previous windows' values).

    Seasonal when `phases` (each window's weekday or hour) and the judged window's
    `phase` are given and at least `min_same_phase` windows share that phase: the centre
    is the median of those windows. The spread is the robust sigma of leave-one-out
    residuals: each window minus the median of the *other* windows of its group (its
    phase group when seasonal, else all), so it is the spread of "a window's value minus
    a centre estimated like this one", centre estimation noise included (trimmed_sigma);
    for all-positive values as a share of that median, times this window's centre. A spread below
    `min_relative_spread * |centre|` or `min_spread` is raised to it (constant history).

    `log`: the same on log(values) (all must be > 0), for a series whose noise is a
    multiple of its level (spend = requests x tokens x price): the returned centre is
    exp(the log centre) and the spread is in log units, at least log(1 +
    min_relative_spread) and log(1 + min_spread / centre); the bound is centre x
    exp(+/- k x spread). A relative spread is symmetric where the noise is not: with 12%
    lognormal day noise, centre x (1 + 5 x spread) is crossed by 3x more normal windows
    than centre x exp(5 x spread) (docs/alerts.md, "Why log scale"). `absolute`:
    residuals in the values' own units even when all are positive (the log values)."""
    values = [float(v) for v in history]
    if not values:
        raise ValueError("learn() needs at least one value")
    if log:
        if any(v <= 0 for v in values):
            raise ValueError("learn(log=True) needs values > 0")
        got = learn(
            [math.log(v) for v in values], phases=phases, phase=phase, min_same_phase=min_same_phase, absolute=True
        )
        centre = math.exp(got.centre)
        floor = max(math.log1p(min_relative_spread), math.log1p(min_spread / centre))
        return Learned(centre, max(got.spread, floor), got.windows, got.seasonal, log=True)
    groups: list[list[int]]
    seasonal = False
    if phases is not None and phase is not None:
        if len(phases) != len(values):
            raise ValueError(f"{len(phases)} phases for {len(values)} values")
        same = [v for v, p in zip(values, phases, strict=True) if p == phase]
        seasonal = len(same) >= min_same_phase
    if seasonal:
        assert phases is not None
        centre = float(statistics.median([v for v, p in zip(values, phases, strict=True) if p == phase]))
        by: dict[int, list[int]] = {}
        for i, p in enumerate(phases):
            by.setdefault(p, []).append(i)
        groups = [g for g in by.values() if len(g) >= 2]
    else:
        centre = float(statistics.median(values))
        groups = [list(range(len(values)))] if len(values) >= 2 else []
    # A series of positive values (spend, latency, counts) varies in proportion to its
    # level, so a weekday's and a weekend's residuals are pooled as shares of their own
    # centre and the spread scaled back at this window's centre; one with zeros or
    # negatives (an error rate that is 0 on most days) in its own units.
    relative = not absolute and all(v > 0 for v in values)
    residuals = []
    for g in groups:
        group = [values[i] for i in g]
        for v, rest in zip(group, _medians_without_each(group), strict=True):
            residuals.append((v - rest) / rest if relative else v - rest)
    sigma = trimmed_sigma(residuals) * (abs(centre) if relative else 1.0)
    spread = max(sigma, min_relative_spread * abs(centre), min_spread)
    return Learned(centre, spread, len(values), seasonal)


def proportion_se(p: float, n_window: float, n_baseline: float | None) -> float:
    """Standard error of (window proportion - baseline proportion) when both estimate p:
    sqrt(p(1-p)/n_window + p(1-p)/n_baseline); the baseline term is left out when
    `n_baseline` is None. p is clipped to [0, 1]."""
    if n_window <= 0:
        raise ValueError(f"n_window must be > 0, got {n_window}")
    q = min(max(p, 0.0), 1.0)
    var = q * (1 - q) / n_window
    if n_baseline:
        var += q * (1 - q) / n_baseline
    return math.sqrt(var)
