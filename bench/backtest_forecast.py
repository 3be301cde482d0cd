"""Backtest of the month-end spend forecast (aimon.stats.forecast): the forecast made on
day `--day` of each month against the month's actual spend.

Daily spend comes from the alert simulation's generators (bench/alertsim: a SaaS
product that drops at weekends, an enterprise tool with holidays and a step when a
large customer onboards, a consumer app that rises at weekends and grows fast), each
day's spend = its volume x the slow token walk x the price mix of the gradual rollout
x a day's own cost noise. For each generator, seed and month of the simulated year,
the forecast sees the complete days before `--day` (up to cost.forecast.history_days)
and the month-to-date spend. Prints, per generator and model, the median and 90th
percentile absolute error and the share of months whose actual spend fell inside the
forecast's interval (docs/analyses/cost.md, "Month-end forecast").

    nice .venv/bin/python bench/backtest_forecast.py [--seeds 5] [--day 10]
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from alertsim.generators import GENERATORS, START, Shape, rollout_share, slow_state

from aimon.stats.forecast import linear_forecast, weekday_forecast

HISTORY = 35
ROWS = 20_000


def daily_spend(shape: Shape, seed: int, days: int) -> dict[dt.date, float]:
    slow = slow_state(shape, seed)
    rng = np.random.default_rng([seed, shape.ident, 77])
    mean_price = np.mean([p[0] + p[1] for p in shape.prices.values()])
    new_price = sum(shape.prices[shape.rollout_model]) / mean_price
    out = {}
    for day in range(days):
        mix = 1.0 + rollout_share(shape, day) * (new_price - 1.0)
        volume = shape.volume(day, ROWS, slow)
        out[START + dt.timedelta(days=day)] = volume * slow.token_walk[day] * mix * np.exp(rng.normal(0, 0.04)) * 1e-3
    return out


def backtest(spend: dict[dt.date, float], day_of_month: int, interval: float) -> dict[str, list[tuple[float, bool]]]:
    """model -> (relative error, actual inside the interval) per month."""
    out: dict[str, list[tuple[float, bool]]] = {"weekday": [], "linear": []}
    first = min(spend)
    d = dt.date(first.year, first.month, 1)
    while True:
        d = (d + dt.timedelta(days=32)).replace(day=1)
        n_days = calendar.monthrange(d.year, d.month)[1]
        month = [d + dt.timedelta(days=i) for i in range(n_days)]
        if month[-1] not in spend:
            return out
        cut = d + dt.timedelta(days=day_of_month)  # the forecast runs after day `day_of_month` ends
        history = [(x, spend[x]) for x in spend if cut - dt.timedelta(days=HISTORY) <= x < cut]
        if len(history) < HISTORY:
            continue
        to_date = sum(spend[x] for x in month if x < cut)
        actual = sum(spend[x] for x in month)
        rest = [(x, 1.0) for x in month if x >= cut]
        fcs = {
            "weekday": weekday_forecast(history, to_date, rest, interval=interval),
            "linear": linear_forecast(to_date, day_of_month / n_days, [spend[x] for x in month if x < cut], interval),
        }
        for name, fc in fcs.items():
            if fc is None:
                continue
            inside = fc.low is not None and fc.high is not None and fc.low <= actual <= fc.high
            out[name].append((fc.total / actual - 1.0, inside))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--day", type=int, default=10, help="day of the month the forecast is made (after it ends)")
    ap.add_argument("--interval", type=float, default=0.9)
    args = ap.parse_args()
    print(f"forecast made after day {args.day} of each month, {args.seeds} seeds x the simulated year per generator\n")
    print("| generator | model | months | median abs error | p90 abs error | mean error | inside the interval |")
    print("|---|---|---|---|---|---|---|")
    for name, shape in GENERATORS.items():
        results: dict[str, list[tuple[float, bool]]] = {"weekday": [], "linear": []}
        for seed in range(1, args.seeds + 1):
            for model, rows in backtest(daily_spend(shape, seed, 395), args.day, args.interval).items():
                results[model] += rows
        for model, rows in results.items():
            err = np.array([e for e, _ in rows])
            cover = np.mean([i for _, i in rows])
            print(
                f"| {name} | {model} | {len(rows)} | {np.median(np.abs(err)):.1%} | "
                f"{np.quantile(np.abs(err), 0.9):.1%} | {err.mean():+.1%} | {cover:.0%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
