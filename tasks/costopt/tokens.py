"""Where the tokens and the dollars go: token quantiles per endpoint, the spend share of
the longest prompts, outputs cut off at max_tokens, and cost per value of a grouping
column (user, tenant, feature) with budgets. All aggregated in the warehouse and
priced like the cost analyzer (aimon.tasks.cost).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa

from aimon.config.costopt import CostOptimisationConfig, GroupCost
from aimon.records import ALL, MetricRecord
from aimon.tasks.abtest.reads import interaction_column
from aimon.tasks.contract import valid_rows
from aimon.tasks.cost import price_frame, token_sums
from aimon.tasks.operational import column_quantiles
from aimon.tasks.orchestration.context import UNKNOWN, AnalysisContext, endpoint_expr, rollup

OTHER = "__other__"  # the values of a grouping column outside its top N
ENDPOINT_LEVELS = (("model", "endpoint"), ("endpoint",), ())


def token_quantiles(ctx: AnalysisContext) -> list[MetricRecord]:
    recs = []
    for col, kind in (("input_tokens", "input"), ("output_tokens", "output")):
        for r in column_quantiles(ctx, col, ENDPOINT_LEVELS).itertuples(index=False):
            recs.append(
                MetricRecord.of(
                    "llm_tokens_quantile", r.value, type=kind, quantile=r.quantile, model=r.model, endpoint=r.endpoint
                )
            )
    return recs


def long_prompt_share(
    ctx: AnalysisContext, cfg: CostOptimisationConfig, boundaries: Sequence[dt.datetime], spend: pd.DataFrame
) -> list[MetricRecord]:
    """Per endpoint (and overall): the share of the spend carried by the requests whose
    input tokens are above the endpoint's `long_prompt_quantile`."""
    ix = ctx.interactions
    inp = ix.col("input_tokens")
    if inp is None:
        return []
    q = cfg.long_prompt_quantile
    th = column_quantiles(ctx, "input_tokens", (("endpoint",), ()), quantiles=(q,))
    if th.empty:
        return []
    per_ep = {str(r.endpoint): float(r.value) for r in th.itertuples(index=False) if r.endpoint != ALL}
    overall = float(th[th["endpoint"] == ALL]["value"].iloc[0])
    ep = endpoint_expr(ix)
    long_ep = sa.or_(
        *[
            sa.and_(ep == sa.literal(e), inp > sa.bindparam(f"lp{i}", t, type_=sa.Double))
            for i, (e, t) in enumerate(per_ep.items())
        ]
    )
    pricing, window = ctx.cfg.pricing, ctx.window
    by_ep = price_frame(token_sums(ctx, boundaries, where=long_ep), pricing, window, boundaries)
    over = price_frame(
        token_sums(ctx, boundaries, where=inp > sa.bindparam("lp_all", overall, type_=sa.Double)),
        pricing,
        window,
        boundaries,
    )
    total = spend.groupby("endpoint")["cost"].sum()
    recs = []
    for e, cost in by_ep.groupby("endpoint")["cost"].sum().items():
        if total.get(e, 0.0) > 0:
            recs.append(MetricRecord.of("llm_long_prompt_cost_share", cost / total[e], endpoint=e, quantile=q))
    if spend["cost"].sum() > 0:
        recs.append(
            MetricRecord.of(
                "llm_long_prompt_cost_share", over["cost"].sum() / spend["cost"].sum(), endpoint=ALL, quantile=q
            )
        )
    return recs


def truncation(ctx: AnalysisContext, cfg: CostOptimisationConfig) -> tuple[list[MetricRecord], list[str]]:
    """Share of the requests (with a finish reason) whose output hit max_tokens."""
    ix = ctx.interactions
    fin = ix.col("finish_reason")
    if fin is None:
        return [], ["truncation skipped: no finish_reason column (map it in warehouse.columns)"]
    reason = sa.func.lower(sa.func.trim(sa.cast(fin, sa.String)))
    cut = reason.in_([r.lower() for r in cfg.truncation_reasons])
    out = ix.col("output_tokens")
    stmt = (
        sa.select(
            sa.cast(ix.req("model"), sa.String).label("model"),
            endpoint_expr(ix).label("endpoint"),
            sa.func.count(fin).label("n"),
            sa.func.sum(sa.case((cut, 1), else_=0)).label("cut"),
            sa.func.sum(sa.case((cut, out if out is not None else sa.literal_column("0")), else_=0)).label(
                "cut_tokens"
            ),
        )
        .select_from(ix.table)
        .where(ix.in_window(), valid_rows(ix))
        .group_by(sa.literal_column("model"), sa.literal_column("endpoint"))
    )
    df = pd.DataFrame(ctx.warehouse.fetch(stmt, ctx.params), columns=["model", "endpoint", "n", "cut", "cut_tokens"])
    for c in ("n", "cut", "cut_tokens"):
        df[c] = pd.to_numeric(df[c].astype(object).where(df[c].notna(), 0)).astype("float64")
    recs = []
    for r in rollup(df, ["n", "cut", "cut_tokens"]).itertuples(index=False):
        if r.n:
            recs.append(MetricRecord.of("llm_truncated_share", r.cut / r.n, model=r.model, endpoint=r.endpoint))
            recs.append(
                MetricRecord.of("llm_truncated_output_tokens", r.cut_tokens, model=r.model, endpoint=r.endpoint)
            )
    return recs, []


def group_costs(
    ctx: AnalysisContext, group: GroupCost, boundaries: Sequence[dt.datetime]
) -> tuple[list[MetricRecord], list[str]]:
    """Cost per value of the grouping column: the top N by cost, the rest folded into
    __other__; a value with a budget is always kept, with its used ratio."""
    col = interaction_column(ctx, group.column)
    if col is None:
        return [], [f"cost per {group.column} skipped: no column {group.column!r} in the table"]
    value = sa.func.coalesce(sa.cast(col, sa.String), sa.literal_column(f"'{UNKNOWN}'"))
    priced = price_frame(token_sums(ctx, boundaries, by={"key": value}), ctx.cfg.pricing, ctx.window, boundaries)
    per = priced.groupby("key")["cost"].sum().sort_values(ascending=False, kind="stable")
    keep = list(per.index[: group.top]) + [
        k for k in group.budgets if k in per.index and k not in per.index[: group.top]
    ]
    recs = [MetricRecord.of("llm_group_cost_usd", per[k], group=group.column, key=k) for k in keep]
    rest = per.drop(index=keep)
    if len(rest):
        recs.append(MetricRecord.of("llm_group_cost_usd", rest.sum(), group=group.column, key=OTHER))
        recs.append(MetricRecord.of("llm_group_folded_values", len(rest), group=group.column))
    if per.sum() > 0 and len(per):
        recs.append(
            MetricRecord.of("llm_group_top_cost_share", per.iloc[: group.top].sum() / per.sum(), group=group.column)
        )
    budget_recs, notes = group_budgets(ctx, group, per)
    return recs + budget_recs, notes


def group_budgets(ctx: AnalysisContext, group: GroupCost, per: pd.Series) -> tuple[list[MetricRecord], list[str]]:
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
            labels={"group": group.column, "key": key},
            start_from=period_start,
            before=window.start,
        )
        spent = float(per.get(key, 0.0)) + sum(f.value for f in prior)
        recs.append(
            MetricRecord.of(
                "llm_group_budget_used_ratio", spent / usd, group=group.column, key=key, period=group.period
            )
        )
    return recs, []
