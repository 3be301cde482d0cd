"""Month-end spend forecasts with an interval.

``weekday``: log daily spend = level + weekday effect (effects summing to 0). The
weekday effects come from a least-squares fit with a trend over the last weeks of
complete days (so growth does not leak into them); the level is the mean of the last
two deseasonalised weekly means, and the part of their week-to-week change that a
day's own noise cannot explain is a random walk (token lengths, the model mix and
traffic wander). No trend is carried forward: in the backtest a drift read from a few
weekly means cost more than the growth it caught. The interval is simulated from the
level's, the walk's and each day's own uncertainty. Weekends and weekdays differ in
most products (business tools drop at the weekend, consumer apps rise), so a
month-to-date rate over-forecasts a month whose remaining days hold more weekends than
its start, and under-forecasts the reverse.

``linear``: month-to-date spend / elapsed share of the month, with no interval unless
three days are known (then the day-to-day spread). Used when the history is too short
for weekday effects (fewer than 14 days, or a day with no spend).

``bench/backtest_forecast.py`` checks both on simulated months (docs/analyses/cost.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_WEEKDAY_DAYS = 14  # two of each weekday
WEEK = 7
LEVEL_WEEKS = 2


@dataclass(frozen=True)
class MonthForecast:
    total: float  # spend to date + the expected rest of the month
    low: float | None  # the interval's ends (None: no interval)
    high: float | None
    model: str  # weekday or linear


def linear_forecast(
    to_date: float, elapsed: float, daily: Sequence[float] = (), interval: float = 0.9, days: int | None = None
) -> MonthForecast:
    """`elapsed`: share of the month gone (0-1]; `daily`: the month's complete days
    stored; `days`: the month's length (None: as many as `daily` over `elapsed`)."""
    total = to_date / elapsed
    if len(daily) < 3:
        return MonthForecast(total, None, None, "linear")
    x = np.asarray(daily, dtype="float64")
    remaining_days = (1.0 - elapsed) * days if days is not None else (1.0 - elapsed) / elapsed * len(x)
    half = _z(interval) * float(np.std(x, ddof=1)) * np.sqrt(remaining_days * (1.0 + remaining_days / len(x)))
    return MonthForecast(total, max(to_date, total - half), total + half, "linear")


def weekday_forecast(
    history: Sequence[tuple[dt.date, float]],
    to_date: float,
    remaining: Sequence[tuple[dt.date, float]],
    *,
    interval: float = 0.9,
    draws: int = 4000,
    seed: int = 0,
) -> MonthForecast | None:
    """`history`: (local date, spend) of complete days, any order; `remaining`: (date,
    fraction of the day still to come) for the rest of the month. None when the
    history cannot carry weekday effects (then use linear_forecast)."""
    days = sorted(history)
    if len(days) < MIN_WEEKDAY_DAYS or any(v <= 0 for _, v in days):
        return None
    if len({d.weekday() for d, _ in days}) < WEEK:
        return None
    if not remaining:
        return MonthForecast(to_date, to_date, to_date, "weekday")
    origin = days[-1][0]
    t = np.array([(d - origin).days for d, _ in days], dtype="float64")
    y = np.log([v for _, v in days])
    x = _design(t, [d.weekday() for d, _ in days])
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    z = y - x[:, 2:] @ beta[2:]  # deseasonalised
    blocks = z[len(z) - (len(z) // WEEK) * WEEK :].reshape(-1, WEEK)
    within = float(np.sum((blocks - blocks.mean(axis=1, keepdims=True)) ** 2) / (blocks.size - len(blocks)))
    means = blocks.mean(axis=1)
    change = np.diff(means)
    spread = float(np.var(change, ddof=1)) if len(change) > 1 else 0.0
    # Weekly means move by their noise (2 within / 7) plus 7 days of the walk.
    q = max(0.0, spread - 2 * within / WEEK) / WEEK
    # The level: the last LEVEL_WEEKS weekly means, no trend carried forward (a drift read
    # from five weekly means is mostly noise: extrapolated, it doubled the p90 error in
    # the backtest); its age (days since the middle of those weeks) adds walk variance.
    lw = min(LEVEL_WEEKS, len(means))
    age = (WEEK * lw - 1) / 2
    level = float(means[-lw:].mean())
    level_sd = np.sqrt(within / (WEEK * lw) + q * age)

    tr = np.array([(d - origin).days for d, _ in remaining], dtype="float64")
    frac = np.array([f for _, f in remaining], dtype="float64")
    weekday = _design(tr, [d.weekday() for d, _ in remaining])[:, 2:] @ beta[2:]
    rng = np.random.default_rng(seed)
    lv = rng.normal(level, level_sd, size=(draws, 1))
    gaps = np.diff(np.concatenate([[0.0], tr]))
    walk = np.cumsum(rng.standard_normal((draws, len(tr))) * np.sqrt(q * gaps), axis=1)
    own = rng.normal(0.0, np.sqrt(within), size=(draws, len(tr)))
    sims = to_date + (np.exp(lv + weekday + walk + own) * frac).sum(axis=1)
    lo, hi = np.quantile(sims, [(1 - interval) / 2, (1 + interval) / 2])
    return MonthForecast(float(np.mean(sims)), float(lo), float(hi), "weekday")


def _design(t: np.ndarray, weekdays: Sequence[int]) -> np.ndarray:
    """Intercept, trend (per week), and 6 weekday contrasts (sum-to-zero coding)."""
    wd = np.asarray(weekdays)
    cols = [np.ones_like(t), t / WEEK]
    for k in range(WEEK - 1):
        cols.append((wd == k).astype("float64") - (wd == WEEK - 1).astype("float64"))
    return np.column_stack(cols)


def _z(interval: float) -> float:
    from statistics import NormalDist  # noqa: PLC0415

    return NormalDist().inv_cdf((1 + interval) / 2)
