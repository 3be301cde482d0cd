"""Where the tokens and the dollars go: token quantiles per endpoint, the spend share of
the longest prompts, outputs cut off at max_tokens, and cost per value of a grouping
column (user, tenant, feature) with budgets. All aggregated in the warehouse and
priced like the cost analyzer (aimon.tasks.cost).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from aimon.catalogue import FORBIDDEN_LABELS
from aimon.config.costopt import CostOptimisationConfig, GroupCost
from aimon.records import ALL, MetricRecord
from aimon.tasks.abtest.reads import interaction_column
from aimon.tasks.contract import valid_rows
from aimon.tasks.cost import numeric_frame, row_cost_expr, row_priced_expr
from aimon.tasks.operational import QUANTILES
from aimon.tasks.orchestration.context import UNKNOWN, AnalysisContext, endpoint_expr, rollup

OTHER = "__other__"  # the values of a grouping column outside its top N


def count_quantiles(ctx: AnalysisContext, name: str, quantiles: Sequence[float]) -> list[tuple[str, float, float, int]]:
    """(endpoint or __all__, quantile, value, n) of a token column, exact: the window's
    value counts per endpoint come from the warehouse (a few thousand distinct token
    counts, not 10M rows; 4x faster than quantile_cont on DuckDB and the same on every
    engine), and the order statistics are read off their cumulative counts with
    numpy's linear interpolation."""
    ix = ctx.interactions
    col = ix.col(name)
    if col is None:
        return []
    stmt = (
        sa.select(endpoint_expr(ix).label("g_e"), col.label("g_v"), sa.func.count().label("n"))
        .select_from(ix.table)
        .where(ix.in_window(), valid_rows(ix), col.is_not(None))
        .group_by(sa.literal_column("g_e"), sa.literal_column("g_v"))
    )
    # g_ names: a bare alias that is also a column of the table would group by the column.
    df = pd.DataFrame(ctx.warehouse.fetch(stmt, ctx.params), columns=["g_e", "g_v", "n"])
    df = df.rename(columns={"g_e": "e", "g_v": "v"})
    if df.empty:
        return []
    df["v"] = pd.to_numeric(df["v"].astype(object)).astype("float64")
    df["n"] = df["n"].astype("int64")
    parts = [(str(e), g.groupby("v")["n"].sum()) for e, g in df.groupby("e")]
    parts.append((ALL, df.groupby("v")["n"].sum()))
    out = []
    for e, counts in parts:
        values = counts.index.to_numpy(dtype="float64")
        cum = np.cumsum(counts.to_numpy())
        n = int(cum[-1])
        for q in quantiles:
            h = (n - 1) * q
            lo = int(np.floor(h))
            a = values[np.searchsorted(cum, lo, side="right")]
            b = values[np.searchsorted(cum, min(lo + 1, n - 1), side="right")]
            t = h - lo
            out.append((e, q, float(a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t)), n))
    return out


def token_quantiles(ctx: AnalysisContext, cfg: CostOptimisationConfig) -> tuple[list[MetricRecord], dict[str, float]]:
    """Input and output tokens per request at QUANTILES (and the long-prompt quantile),
    per endpoint and overall; and the input-token thresholds of the long prompts."""
    recs = []
    qs = tuple(sorted({*QUANTILES, cfg.long_prompt_quantile}))
    thresholds: dict[str, float] = {}
    for col, kind in (("input_tokens", "input"), ("output_tokens", "output")):
        for e, q, value, _ in count_quantiles(ctx, col, qs):
            recs.append(MetricRecord.of("llm_tokens_quantile", value, type=kind, quantile=q, model=ALL, endpoint=e))
            if kind == "input" and q == cfg.long_prompt_quantile:
                thresholds[e] = value
    return recs, thresholds


def spend_shape(
    ctx: AnalysisContext, cfg: CostOptimisationConfig, boundaries: Sequence[dt.datetime], thresholds: dict[str, float]
) -> tuple[list[MetricRecord], list[str], pd.DataFrame]:
    """One scan for the spend per model and endpoint (requests, cost, input and cached
    input tokens: the frame the cache and the model comparison read), the long prompts'
    share of it (per endpoint and overall: the requests above that level's input-token
    threshold) and the outputs cut off at max_tokens (requests with a finish reason, and
    their output tokens)."""
    ix = ctx.interactions
    inp, fin, out = ix.col("input_tokens"), ix.col("finish_reason"), ix.col("output_tokens")
    ep = endpoint_expr(ix)
    cost = row_cost_expr(ctx, boundaries)
    cols: list[Any] = [
        sa.func.count().label("n"),
        sa.func.sum(cost).label("cost"),
        sa.func.sum(row_priced_expr(ctx, boundaries)).label("n_priced"),
    ]
    for name in ("input_tokens", "cached_input_tokens"):
        c = ix.col(name)
        if c is not None:
            cols.append(sa.func.sum(c).label(name))
    per_ep = {e: t for e, t in thresholds.items() if e != ALL}
    if inp is not None and per_ep:
        long_ep = sa.or_(
            *[
                sa.and_(ep == sa.literal(e), inp > sa.bindparam(f"lp{i}", t, type_=sa.Double))
                for i, (e, t) in enumerate(per_ep.items())
            ]
        )
        long_all = inp > sa.bindparam("lp_all", thresholds.get(ALL, float("inf")), type_=sa.Double)
        cols += [
            sa.func.sum(sa.case((long_ep, cost), else_=None)).label("long_ep"),
            sa.func.sum(sa.case((long_all, cost), else_=None)).label("long_all"),
        ]
    notes = []
    if fin is not None:
        cut = sa.func.lower(sa.func.trim(sa.cast(fin, sa.String))).in_([r.lower() for r in cfg.truncation_reasons])
        cols += [
            sa.func.count(fin).label("n_fin"),
            sa.func.sum(sa.case((cut, 1), else_=0)).label("cut"),
            sa.func.sum(sa.case((cut, out if out is not None else sa.literal_column("0")), else_=0)).label(
                "cut_tokens"
            ),
        ]
    else:
        notes.append("truncation skipped: no finish_reason column (map it in warehouse.columns)")
    stmt = (
        sa.select(sa.cast(ix.req("model"), sa.String).label("g_model"), ep.label("g_endpoint"), *cols)
        .select_from(ix.table)
        .where(ix.in_window(), valid_rows(ix))
        .group_by(sa.literal_column("g_model"), sa.literal_column("g_endpoint"))
    )
    df = pd.DataFrame(ctx.warehouse.fetch(stmt, ctx.params), columns=[c.key for c in stmt.selected_columns])
    df = numeric_frame(df.rename(columns={"g_model": "model", "g_endpoint": "endpoint"}), ["model", "endpoint"])
    recs = []
    q = cfg.long_prompt_quantile
    if "long_ep" in df:
        for e, part in df.groupby("endpoint"):
            if part["cost"].sum() > 0:
                share = part["long_ep"].sum() / part["cost"].sum()
                recs.append(MetricRecord.of("llm_long_prompt_cost_share", share, endpoint=e, quantile=q))
        if df["cost"].sum() > 0:
            share = df["long_all"].sum() / df["cost"].sum()
            recs.append(MetricRecord.of("llm_long_prompt_cost_share", share, endpoint=ALL, quantile=q))
    if "n_fin" in df:
        for r in rollup(df, ["n_fin", "cut", "cut_tokens"]).itertuples(index=False):
            if r.n_fin:
                labels = {"model": r.model, "endpoint": r.endpoint}
                recs.append(MetricRecord.of("llm_truncated_share", r.cut / r.n_fin, **labels))
                recs.append(MetricRecord.of("llm_truncated_output_tokens", r.cut_tokens, **labels))
    return recs, notes, df


def group_costs(
    ctx: AnalysisContext, group: GroupCost, boundaries: Sequence[dt.datetime]
) -> tuple[list[MetricRecord], list[str]]:
    """Cost per value of the grouping column: the top N by cost, the rest folded into
    __other__; a value with a budget is always kept, with its used ratio."""
    col = interaction_column(ctx, group.column)
    if col is None:
        return [], [f"cost per {group.column} skipped: no column {group.column!r} in the table"]
    value = sa.func.coalesce(sa.cast(col, sa.String), sa.literal_column(f"'{UNKNOWN}'"))
    ix = ctx.interactions
    stmt = (
        sa.select(value.label("g_key"), sa.func.sum(row_cost_expr(ctx, boundaries)).label("cost"))
        .select_from(ix.table)
        .where(ix.in_window(), valid_rows(ix))
        .group_by(sa.literal_column("g_key"))
    )
    priced = pd.DataFrame(ctx.warehouse.fetch(stmt, ctx.params), columns=["g_key", "cost"]).rename(
        columns={"g_key": "key"}
    )
    priced = numeric_frame(priced, ["key"])
    per = priced.set_index("key")["cost"].sort_values(ascending=False, kind="stable")
    # A column mapped to an unbounded contract column (user_id, ...) is labelled by that
    # name, so the push keeps its values out of Prometheus (aimon.catalogue.series_problem).
    label = next((k for k, phys in ix.present.items() if phys == group.column and k in FORBIDDEN_LABELS), group.column)
    keep = list(per.index[: group.top]) + [
        k for k in group.budgets if k in per.index and k not in per.index[: group.top]
    ]
    recs = [MetricRecord.of("llm_group_cost_usd", per[k], group=label, key=k) for k in keep]
    rest = per.drop(index=keep)
    if len(rest):
        recs.append(MetricRecord.of("llm_group_cost_usd", rest.sum(), group=label, key=OTHER))
        recs.append(MetricRecord.of("llm_group_folded_values", len(rest), group=label))
    if per.sum() > 0 and len(per):
        recs.append(MetricRecord.of("llm_group_top_cost_share", per.iloc[: group.top].sum() / per.sum(), group=label))
    budget_recs, notes = group_budgets(ctx, group, per, label)
    return recs + budget_recs, notes


def group_budgets(
    ctx: AnalysisContext, group: GroupCost, per: pd.Series, label: str
) -> tuple[list[MetricRecord], list[str]]:
    """Used ratio per budgeted value: this window plus its stored earlier windows of the
    period (the llm_group_cost_usd figures)."""
    recs: list[MetricRecord] = []
    window = ctx.window
    local = window.local_start
    start_local = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if group.period == "month":
        start_local = start_local.replace(day=1)
    period_start = start_local.astimezone(dt.UTC).replace(tzinfo=None)
    for key, usd in group.budgets.items():
        prior = ctx.store.figures(
            granularity=window.granularity,
            metric="llm_group_cost_usd",
            labels={"group": label, "key": key},
            start_from=period_start,
            before=window.start,
        )
        spent = float(per.get(key, 0.0)) + sum(f.value for f in prior)
        recs.append(
            MetricRecord.of("llm_group_budget_used_ratio", spent / usd, group=label, key=key, period=group.period)
        )
    return recs, []
