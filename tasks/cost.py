"""Tokens, spend and budgets.

Spend is the gateway's logged ``cost_usd`` where present (unless ``cost.reprice``),
else tokens priced from the date-versioned pricing table: the price in effect at each
interaction's timestamp. The window is cut at every ``effective_from`` inside it and
tokens are summed per piece in the warehouse, so a mid-window price change is exact
without pulling rows. Requests that cannot be priced (no price for the model, or no
tokens) are counted as ``llm_unpriced_requests`` and named, never priced at 0.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from aimon.config import Config, PriceEntry
from aimon.records import ALL, AnalyzerResult, MetricRecord
from aimon.stats.forecast import linear_forecast, weekday_forecast
from aimon.store.metrics import Store
from aimon.tasks.contract import valid_rows
from aimon.tasks.orchestration.context import AnalysisContext, endpoint_expr, rollup
from aimon.windows import Window

TOKEN_TYPES = {"input_tokens": "input", "output_tokens": "output", "cached_input_tokens": "cached_input"}


def _utc_midnight(d: dt.date) -> dt.datetime:
    return dt.datetime.combine(d, dt.time())


def price_boundaries(pricing: Sequence[PriceEntry], window: Window) -> list[dt.datetime]:
    """Instants inside the window where some model's price changes (UTC midnight)."""
    inside = {_utc_midnight(p.effective_from) for p in pricing}
    return sorted(b for b in inside if window.start < b < window.end)


def price_at(pricing: Sequence[PriceEntry], model: str, at: dt.datetime) -> PriceEntry | None:
    """The entry in effect for `model` at instant `at` (latest effective_from <= at)."""
    entries = [p for p in pricing if p.model == model and _utc_midnight(p.effective_from) <= at]
    return max(entries, key=lambda p: p.effective_from) if entries else None


def price_segment(ctx: AnalysisContext, boundaries: Sequence[dt.datetime]) -> sa.ColumnElement[Any]:
    """The index of the price segment a row falls in (0 when no price changes inside)."""
    ts = ctx.interactions.req("timestamp")
    if not boundaries:
        return sa.literal_column("0")
    return sa.case(
        *[
            (ts < sa.bindparam(f"b{i}", b, type_=sa.DateTime), sa.literal_column(str(i)))
            for i, b in enumerate(boundaries)
        ],
        else_=sa.literal_column(str(len(boundaries))),
    )


def numeric_frame(df: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Every column but `keys` as float64 (SUM of nothing is NULL, PostgreSQL sums
    integers as Decimal), the rows sorted by `keys`: an engine returns groups in any
    order, and the roll-ups summed from them must not change with it."""
    for c in df.columns:
        if c not in keys:
            df[c] = pd.to_numeric(df[c].astype(object).where(df[c].notna(), 0), errors="raise").astype("float64")
    return df.sort_values(list(keys), kind="stable").reset_index(drop=True) if keys and len(df) else df


def token_sums(ctx: AnalysisContext, boundaries: Sequence[dt.datetime]) -> pd.DataFrame:
    """Per model, endpoint and price segment: token sums, logged cost, rows to price."""
    ix = ctx.interactions
    cost = ix.col("cost_usd")
    needs_price: sa.ColumnElement[bool] = sa.true() if cost is None or ctx.cfg.cost.reprice else cost.is_(None)
    cols: list[Any] = [
        sa.cast(ix.req("model"), sa.String).label("g_model"),
        endpoint_expr(ix).label("g_endpoint"),
        price_segment(ctx, boundaries).label("g_segment"),
        sa.func.count().label("n"),
        sa.func.sum(sa.case((needs_price, 1), else_=0)).label("n_price"),
    ]
    for name in TOKEN_TYPES:
        c = ix.col(name)
        if c is not None:
            cols.append(sa.func.sum(c).label(name))
            cols.append(sa.func.sum(sa.case((needs_price, c), else_=None)).label(f"price_{name}"))
    tok = [ix.col(n) for n in ("input_tokens", "output_tokens") if ix.col(n) is not None]
    no_tokens = sa.and_(needs_price, *[t.is_(None) for t in tok if t is not None]) if tok else needs_price
    cols.append(sa.func.sum(sa.case((no_tokens, 1), else_=0)).label("n_no_tokens"))
    if cost is not None and not ctx.cfg.cost.reprice:
        cols.append(sa.func.sum(cost).label("cost_logged"))
    q = (
        sa.select(*cols)
        .select_from(ix.table)
        .where(ix.in_window(), valid_rows(ix))
        .group_by(sa.literal_column("g_model"), sa.literal_column("g_endpoint"), sa.literal_column("g_segment"))
    )
    df = pd.DataFrame(ctx.warehouse.fetch(q, ctx.params), columns=[c.key for c in q.selected_columns])
    df = df.rename(columns={"g_model": "model", "g_endpoint": "endpoint", "g_segment": "segment"})
    return numeric_frame(df, ["model", "endpoint"])


def price_frame(
    sums: pd.DataFrame, pricing: Sequence[PriceEntry], window: Window, boundaries: Sequence[dt.datetime]
) -> pd.DataFrame:
    """Add `cost_priced`, `cost` and `unpriced` columns to the token sums."""
    starts = [window.start, *boundaries]
    priced: list[float] = []
    unpriced: list[int] = []
    for r in sums.itertuples(index=False):
        entry = price_at(pricing, r.model, starts[int(r.segment)])
        n_price = int(r.n_price)
        if entry is None:
            priced.append(0.0)
            unpriced.append(n_price)
            continue
        d = r._asdict()
        inp = d.get("price_input_tokens", 0.0)
        cached = d.get("price_cached_input_tokens", 0.0)
        out = d.get("price_output_tokens", 0.0)
        cached_rate = entry.cached_input_per_1m if entry.cached_input_per_1m is not None else entry.input_per_1m
        priced.append(((inp - cached) * entry.input_per_1m + cached * cached_rate + out * entry.output_per_1m) / 1e6)
        unpriced.append(int(r.n_no_tokens))
    out_df = sums.assign(cost_priced=np.array(priced, dtype="float64"), unpriced=np.array(unpriced, dtype="int64"))
    return out_df.assign(cost=out_df["cost_priced"] + out_df.get("cost_logged", 0.0))


def exact(x: sa.ColumnElement[Any], scale: int = 12, precision: int = 38) -> sa.ColumnElement[Any]:
    """`x` as a fixed-point decimal, so that sums of it are exact: a parallel engine adds
    floats in whatever order its threads meet the rows, and a rerun of the same window
    must store the same figures (tests/test_prometheus.py compares them bit for bit).
    Precision 38: a logged cost in micro-dollars must not overflow it (as fast as 18 on
    DuckDB in bench_costopt.py)."""
    return sa.cast(x, sa.Numeric(precision, scale))


def row_cost_expr(ctx: AnalysisContext, boundaries: Sequence[dt.datetime]) -> sa.ColumnElement[Any]:
    """One request's cost as SQL, priced exactly as price_frame prices the sums: the
    logged cost_usd (unless cost.reprice), else its tokens at the price in effect at
    the start of its price segment; 0 when it cannot be priced. For aggregates over
    many small groups (the cost optimiser's prompt groups), where one sum beats ten.
    A fixed-point decimal (`exact`), so its sums do not depend on the summation order."""
    ix = ctx.interactions
    cost = ix.col("cost_usd")
    model = sa.cast(ix.req("model"), sa.String)
    segment = price_segment(ctx, boundaries)
    starts = [ctx.window.start, *boundaries]

    def tok(name: str) -> sa.ColumnElement[Any]:
        c = ix.col(name)
        return sa.literal_column("0") if c is None else sa.func.coalesce(sa.cast(c, sa.Double), 0.0)

    inp, out, cached = tok("input_tokens"), tok("output_tokens"), tok("cached_input_tokens")
    cases = []
    for m in sorted({p.model for p in ctx.cfg.pricing}):
        for i, start in enumerate(starts):
            e = price_at(ctx.cfg.pricing, m, start)
            if e is None:
                continue
            cached_rate = e.cached_input_per_1m if e.cached_input_per_1m is not None else e.input_per_1m
            formula = ((inp - cached) * e.input_per_1m + cached * cached_rate + out * e.output_per_1m) / 1e6
            when = model == sa.literal(m) if len(starts) == 1 else sa.and_(model == sa.literal(m), segment == i)
            cases.append((when, formula))
    priced: sa.ColumnElement[Any] = (
        sa.case(*cases, else_=sa.literal_column("0.0")) if cases else sa.literal_column("0.0")
    )
    if cost is None or ctx.cfg.cost.reprice:
        return exact(priced)
    return exact(sa.case((cost.is_(None), priced), else_=sa.cast(cost, sa.Double)))


def row_priced_expr(ctx: AnalysisContext, boundaries: Sequence[dt.datetime]) -> sa.ColumnElement[Any]:
    """1 for a request row_cost_expr can price (a logged cost, or a price for its model
    in its segment and some tokens), else 0: the divisor of a cost per request, so an
    unpriced request does not make a model look cheaper."""
    ix = ctx.interactions
    cost = ix.col("cost_usd")
    model = sa.cast(ix.req("model"), sa.String)
    segment = price_segment(ctx, boundaries)
    starts = [ctx.window.start, *boundaries]
    tok = [ix.col(n) for n in ("input_tokens", "output_tokens") if ix.col(n) is not None]
    has_tokens = sa.or_(*[t.is_not(None) for t in tok if t is not None]) if tok else sa.false()
    whens = []
    for m in sorted({p.model for p in ctx.cfg.pricing}):
        for i, start in enumerate(starts):
            if price_at(ctx.cfg.pricing, m, start) is not None:
                whens.append(
                    model == sa.literal(m) if len(starts) == 1 else sa.and_(model == sa.literal(m), segment == i)
                )
    priced = sa.and_(sa.or_(*whens), has_tokens) if whens else sa.false()
    if cost is not None and not ctx.cfg.cost.reprice:
        priced = sa.or_(cost.is_not(None), priced)
    return sa.case((priced, 1), else_=0)


def budget_figures(
    cfg: Config, window: Window, spend: pd.DataFrame, store: Store
) -> tuple[list[MetricRecord], list[str]]:
    """Used ratio per budget and period, and a month-end forecast with its interval.

    Earlier spend in the period comes from the metrics table (this granularity's
    stored `llm_cost_usd`), so a daily run does not re-read the month's rows; so does the
    forecast's history (cost.forecast.history_days of it, summed into local days).
    """
    recs: list[MetricRecord] = []
    notes: list[str] = []
    local = window.local_start
    tz = local.tzinfo
    month_start_local = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    month_start = month_start_local.astimezone(dt.UTC).replace(tzinfo=None)
    days_in_month = calendar.monthrange(local.year, local.month)[1]
    next_month = (month_start_local + dt.timedelta(days=days_in_month)).replace(day=1, tzinfo=tz)
    month_end = next_month.astimezone(dt.UTC).replace(tzinfo=None)
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC).replace(tzinfo=None)
    fc = cfg.cost.forecast
    for b in cfg.budgets:
        labels = {"model": b.model or ALL, "endpoint": ALL}
        row = spend[(spend["model"] == labels["model"]) & (spend["endpoint"] == ALL)]
        current = float(row["cost"].sum()) if len(row) else 0.0
        period_start = day_start if b.period == "day" else month_start
        history_start = min(period_start, day_start - dt.timedelta(days=fc.history_days))
        stored = store.figures(
            granularity=window.granularity,
            metric="llm_cost_usd",
            labels=labels,
            start_from=history_start,
            before=window.start,
        )
        prior = [f for f in stored if f.window_start >= period_start]
        to_date = current + sum(f.value for f in prior)
        recs.append(MetricRecord.of("llm_budget_used_ratio", to_date / b.usd, scope=b.scope, period=b.period))
        recs.append(MetricRecord.of("llm_budget_usd", b.usd, scope=b.scope, period=b.period))
        if b.period != "month":
            continue
        elapsed = (window.end - month_start) / (month_end - month_start)
        end_date = window.end.replace(tzinfo=dt.UTC).astimezone(tz).date()  # days before it are complete
        daily = _local_days(window, [(f.window_start, f.value) for f in stored] + [(window.start, current)])
        forecast = None
        if fc.model == "weekday":
            complete = [(d, v) for d, v in daily.items() if d < end_date]
            forecast = weekday_forecast(complete, to_date, _remaining(window, next_month.date()), interval=fc.interval)
        if forecast is None:
            month_days = [v for d, v in daily.items() if d >= month_start_local.date() and d < end_date]
            forecast = linear_forecast(to_date, elapsed, month_days, interval=fc.interval, days=days_in_month)
        recs.append(MetricRecord.of("llm_cost_forecast_usd", forecast.total, scope=b.scope))
        recs.append(MetricRecord.of("llm_budget_forecast_ratio", forecast.total / b.usd, scope=b.scope))
        if forecast.low is not None and forecast.high is not None:
            recs.append(MetricRecord.of("llm_cost_forecast_usd_low", forecast.low, scope=b.scope))
            recs.append(MetricRecord.of("llm_cost_forecast_usd_high", forecast.high, scope=b.scope))
        expected = round((window.start - month_start) / (window.end - window.start))
        if len(prior) < expected:
            notes.append(
                f"budget {b.scope}: month-to-date from {len(prior)} of {expected} earlier "
                f"{window.granularity} windows stored (backfill the rest for an exact figure)"
            )
    return recs, notes


def _local_days(window: Window, spend: Sequence[tuple[dt.datetime, float]]) -> dict[dt.date, float]:
    """Spend per local date of the windows' starts (hourly windows summed into days)."""
    tz = window.local_start.tzinfo
    out: dict[dt.date, float] = {}
    for start, value in spend:
        d = start.replace(tzinfo=dt.UTC).astimezone(tz).date()
        out[d] = out.get(d, 0.0) + float(value)
    return out


def _remaining(window: Window, next_month: dt.date) -> list[tuple[dt.date, float]]:
    """(local date, share of it still to come) from the window's end to the month's end."""
    local_end = window.end.replace(tzinfo=dt.UTC).astimezone(window.local_start.tzinfo)
    out = []
    d = local_end.date()
    midnight = local_end.replace(hour=0, minute=0, second=0, microsecond=0)
    if local_end > midnight and d < next_month:
        out.append((d, 1.0 - (local_end - midnight).total_seconds() / 86400.0))
        d += dt.timedelta(days=1)
    while d < next_month:
        out.append((d, 1.0))
        d += dt.timedelta(days=1)
    return out


def cost_records(totals: pd.DataFrame, token_cols: Sequence[str]) -> list[MetricRecord]:
    recs = []
    for r in totals.itertuples(index=False):
        d = r._asdict()
        labels = {"model": r.model, "endpoint": r.endpoint}
        recs.append(MetricRecord.of("llm_cost_usd", d["cost"], **labels))
        for col in token_cols:
            recs.append(MetricRecord.of("llm_tokens", d[col], type=TOKEN_TYPES[col], **labels))
        if r.endpoint == ALL:
            recs.append(MetricRecord.of("llm_unpriced_requests", d["unpriced"], model=r.model))
    return recs


def analyze_cost(ctx: AnalysisContext) -> AnalyzerResult:
    ix = ctx.interactions
    token_cols = [c for c in TOKEN_TYPES if ix.has(c)]
    if not token_cols and not ix.has("cost_usd"):
        return AnalyzerResult("cost", (), ("no cost: the table has neither token columns nor cost_usd",))
    pricing = ctx.cfg.pricing
    boundaries = price_boundaries(pricing, ctx.window)
    priced = price_frame(token_sums(ctx, boundaries), pricing, ctx.window, boundaries)
    totals = rollup(priced, ["cost", "unpriced", *token_cols])
    recs = cost_records(totals, token_cols)
    budget_recs, notes = budget_figures(ctx.cfg, ctx.window, totals, ctx.store)
    unpriced = {
        str(r.model): int(r.unpriced)
        for r in totals.itertuples(index=False)
        if r.endpoint == ALL and r.model != ALL and r.unpriced
    }
    if unpriced:
        no_price = sorted(m for m in unpriced if not any(p.model == m for p in pricing))
        notes.insert(
            0,
            "unpriced requests (left out of llm_cost_usd): "
            + ", ".join(f"{m} {n}" for m, n in sorted(unpriced.items()))
            + (f"; no price in the pricing table for {', '.join(no_price)}" if no_price else ""),
        )
    return AnalyzerResult("cost", tuple(recs + budget_recs), tuple(notes), {"unpriced": unpriced})
