"""Month-end spend forecasts with an interval.

``weekday``: log daily spend = level + trend x day + weekday effect (effects summing
to 0), fitted by least squares on the last weeks of complete days; the days left in the
month are predicted from it, and the interval is simulated: the fit's parameters drawn
from their sampling distribution plus each day's own noise (lognormal), so a short or
noisy history widens it. Weekends and weekdays differ in most products (business tools
drop at the weekend, consumer apps rise), so a month-to-date rate over-forecasts a month
whose remaining days hold more weekends than its start, and under-forecasts the reverse.

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
MIN_TREND_DAYS = 21


@dataclass(frozen=True)
class MonthForecast:
    total: float  # spend to date + the expected rest of the month
    low: float | None  # the interval's ends (None: no interval)
    high: float | None
    model: str  # weekday or linear


def linear_forecast(
    to_date: float, elapsed: float, daily: Sequence[float] = (), interval: float = 0.9
) -> MonthForecast:
    """`elapsed`: share of the month gone (0-1]; `daily`: the month's complete days."""
    total = to_date / elapsed
    if len(daily) < 3:
        return MonthForecast(total, None, None, "linear")
    x = np.asarray(daily, dtype="float64")
    remaining_days = (1.0 - elapsed) / elapsed * len(x)
    z = _z(interval)
    half = z * float(np.std(x, ddof=1)) * np.sqrt(remaining_days * (1.0 + remaining_days / len(x)))
    return MonthForecast(total, max(to_date, total - half), total + half, "linear")


def weekday_forecast(
    history: Sequence[tuple[dt.date, float]],
    to_date: float,
    remaining: Sequence[tuple[dt.date, float]],
    *,
    interval: float = 0.9,
    draws: int = 2000,
    seed: int = 0,
) -> MonthForecast | None:
    """`history`: (local date, spend) of complete days, any order; `remaining`: (date,
    fraction of the day still to come) for the rest of the month. None when the
    history cannot carry weekday effects (then use linear_forecast)."""
    days = sorted(history)
    if len(days) < MIN_WEEKDAY_DAYS or any(v <= 0 for _, v in days):
        return None
    if len({d.weekday() for d, _ in days}) < 7:
        return None
    origin = days[-1][0]
    t = np.array([(d - origin).days for d, _ in days], dtype="float64")
    y = np.log([v for _, v in days])
    trend = len(days) >= MIN_TREND_DAYS
    x = _design(t, [d.weekday() for d, _ in days], trend)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    dof = max(1, len(y) - x.shape[1])
    sigma2 = float(resid @ resid) / dof
    cov = sigma2 * np.linalg.pinv(x.T @ x)
    if not remaining:
        return MonthForecast(to_date, to_date, to_date, "weekday")
    tr = np.array([(d - origin).days for d, _ in remaining], dtype="float64")
    frac = np.array([f for _, f in remaining], dtype="float64")
    xr = _design(tr, [d.weekday() for d, _ in remaining], trend)
    mean_log = xr @ beta
    expected = to_date + float(np.sum(frac * np.exp(mean_log + sigma2 / 2)))
    rng = np.random.default_rng(seed)
    b = rng.multivariate_normal(beta, cov, size=draws, method="cholesky" if _pd(cov) else "svd")
    noise = rng.normal(0.0, np.sqrt(sigma2), size=(draws, len(tr)))
    sims = to_date + (np.exp(b @ xr.T + noise) * frac).sum(axis=1)
    lo, hi = np.quantile(sims, [(1 - interval) / 2, (1 + interval) / 2])
    return MonthForecast(expected, float(lo), float(hi), "weekday")


def _design(t: np.ndarray, weekdays: Sequence[int], trend: bool) -> np.ndarray:
    """Intercept, optional trend, and 6 weekday contrasts (sum-to-zero coding)."""
    wd = np.asarray(weekdays)
    cols = [np.ones_like(t)]
    if trend:
        cols.append(t / 7.0)
    for k in range(6):
        cols.append((wd == k).astype("float64") - (wd == 6).astype("float64"))
    return np.column_stack(cols)


def _pd(cov: np.ndarray) -> bool:
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return False
    return True


def _z(interval: float) -> float:
    from statistics import NormalDist  # noqa: PLC0415

    return NormalDist().inv_cdf((1 + interval) / 2)
