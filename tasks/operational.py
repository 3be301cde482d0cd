"""Operational figures per model x endpoint (and rolled up): requests, throughput,
errors by type, error rate, latency quantiles.

Counts are aggregated in the warehouse. Latency quantiles use linear interpolation
between order statistics, i.e. numpy's ``np.quantile(x, q, method="linear")``:
DuckDB's ``quantile_cont`` and PostgreSQL's ``percentile_cont`` compute exactly that
in the warehouse; other engines ship the latency column as Arrow and numpy does it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from aimon.records import ALL, AnalyzerResult, MetricRecord
from aimon.tasks.contract import valid_rows
from aimon.tasks.orchestration.context import AnalysisContext, endpoint_expr, rollup, status_class_expr

QUANTILES = (0.5, 0.95, 0.99)


def request_counts(ctx: AnalysisContext) -> pd.DataFrame:
    """Valid rows of the window counted by model, endpoint and status class."""
    ix = ctx.interactions
    q = (
        sa.select(
            sa.cast(ix.req("model"), sa.String).label("g_model"),
            endpoint_expr(ix).label("g_endpoint"),
            status_class_expr(ix).label("g_status"),
            sa.func.count().label("n"),
        )
        .select_from(ix.table)
        .where(ix.in_window(), valid_rows(ix))
        .group_by(sa.literal_column("g_model"), sa.literal_column("g_endpoint"), sa.literal_column("g_status"))
    )
    rows = ctx.warehouse.fetch(q, ctx.params)
    df = pd.DataFrame(rows, columns=["g_model", "g_endpoint", "g_status", "n"])
    df = df.rename(columns={"g_model": "model", "g_endpoint": "endpoint", "g_status": "status"})
    df["n"] = df["n"].astype("int64")
    return df


def latency_quantiles(ctx: AnalysisContext) -> pd.DataFrame:
    """Columns model, endpoint, quantile, value, n (rolled up like the counts)."""
    ix = ctx.interactions
    lat = ix.col("latency_seconds")
    cols = ["model", "endpoint", "quantile", "value", "n"]
    if lat is None:
        return pd.DataFrame(columns=cols)
    backend = ctx.warehouse.backend
    where = sa.and_(ix.in_window(), valid_rows(ix), lat.is_not(None))
    model = sa.cast(ix.req("model"), sa.String)
    if backend not in ("duckdb", "postgresql"):
        return _quantiles_numpy(ctx, model, lat, where)

    if backend == "duckdb":
        return _quantiles_duckdb(ctx, model, lat, where)

    def agg(q: float) -> sa.ColumnElement[Any]:
        # A literal, not a bound parameter: both engines want a constant fraction.
        frac: sa.ColumnElement[Any] = sa.literal_column(repr(float(q)))
        if backend == "duckdb":
            return sa.func.quantile_cont(lat, frac)
        return sa.func.percentile_cont(frac).within_group(lat)

    aggs = [agg(q).label(f"q{i}") for i, q in enumerate(QUANTILES)] + [sa.func.count(lat).label("n")]
    levels = [
        (model.label("g_model"), endpoint_expr(ix).label("g_endpoint")),
        (model.label("g_model"), sa.literal_column(f"'{ALL}'").label("g_endpoint")),
        (sa.literal_column(f"'{ALL}'").label("g_model"), sa.literal_column(f"'{ALL}'").label("g_endpoint")),
    ]
    out = []
    for i, (m, e) in enumerate(levels):
        stmt = sa.select(m, e, *aggs).select_from(ix.table).where(where)
        group = ("g_model", "g_endpoint")[: 2 - i]
        if group:
            stmt = stmt.group_by(*[sa.literal_column(g) for g in group])
        for r in ctx.warehouse.fetch(stmt, ctx.params):
            if not r["n"]:
                continue
            for j, q in enumerate(QUANTILES):
                out.append((r["g_model"], r["g_endpoint"], q, float(r[f"q{j}"]), int(r["n"])))
    return pd.DataFrame(out, columns=cols)


def _quantiles_duckdb(ctx: AnalysisContext, model: Any, lat: Any, where: Any) -> pd.DataFrame:
    """One pass: every quantile at once, all three roll-up levels as GROUPING SETS
    (half the time of one query per level and quantile at 10M rows)."""
    ix = ctx.interactions
    fracs: sa.ColumnElement[Any] = sa.literal_column("[" + ", ".join(repr(float(q)) for q in QUANTILES) + "]")
    ep = endpoint_expr(ix)
    all_: sa.ColumnElement[Any] = sa.literal_column(f"'{ALL}'")
    stmt = (
        sa.select(
            sa.case((sa.func.grouping(model) == 1, all_), else_=model).label("g_model"),
            sa.case((sa.func.grouping(ep) == 1, all_), else_=ep).label("g_endpoint"),
            sa.func.quantile_cont(lat, fracs).label("qs"),
            sa.func.count(lat).label("n"),
        )
        .select_from(ix.table)
        .where(where)
        .group_by(sa.func.grouping_sets(sa.tuple_(model, ep), sa.tuple_(model), sa.text("()")))
    )
    out = [
        (r["g_model"], r["g_endpoint"], q, float(v), int(r["n"]))
        for r in ctx.warehouse.fetch(stmt, ctx.params)
        if r["n"]
        for q, v in zip(QUANTILES, r["qs"], strict=True)
    ]
    return pd.DataFrame(out, columns=["model", "endpoint", "quantile", "value", "n"])


def _quantiles_numpy(ctx: AnalysisContext, model: Any, lat: Any, where: Any) -> pd.DataFrame:
    ix = ctx.interactions
    stmt = (
        sa.select(model.label("model"), endpoint_expr(ix).label("endpoint"), lat.label("latency"))
        .select_from(ix.table)
        .where(where)
    )
    df = ctx.warehouse.fetch_arrow(stmt, ctx.params).to_pandas()
    out = []
    if len(df):
        x = df["latency"].to_numpy(dtype="float64")
        groups: list[tuple[str, str, np.ndarray]] = [
            (str(m), str(e), x[idx]) for (m, e), idx in df.groupby(["model", "endpoint"]).indices.items()
        ]
        groups += [(str(m), ALL, x[idx]) for m, idx in df.groupby("model").indices.items()]
        groups.append((ALL, ALL, x))
        for m, e, vals in groups:
            qs = np.quantile(vals, QUANTILES, method="linear")
            out += [(m, e, q, float(v), len(vals)) for q, v in zip(QUANTILES, qs, strict=True)]
    return pd.DataFrame(out, columns=["model", "endpoint", "quantile", "value", "n"])


def operational_records(counts: pd.DataFrame, quantiles: pd.DataFrame, minutes: float) -> list[MetricRecord]:
    counts = counts.assign(errors=(counts["status"] != "ok").astype("int64") * counts["n"])
    totals = rollup(counts, ["n", "errors"])
    recs: list[MetricRecord] = []
    for r in totals.itertuples(index=False):
        labels = {"model": r.model, "endpoint": r.endpoint}
        recs.append(MetricRecord.of("llm_requests", r.n, **labels))
        recs.append(MetricRecord.of("llm_requests_per_minute", r.n / minutes, **labels))
        recs.append(MetricRecord.of("llm_errors", r.errors, error_type=ALL, **labels))
        if r.n:
            recs.append(MetricRecord.of("llm_error_rate", r.errors / r.n, **labels))
    errors = counts[counts["status"] != "ok"]
    for etype, part in errors.groupby("status"):
        for r in rollup(part, ["n"]).itertuples(index=False):
            recs.append(MetricRecord.of("llm_errors", r.n, error_type=etype, model=r.model, endpoint=r.endpoint))
    for r in quantiles.itertuples(index=False):
        recs.append(
            MetricRecord.of("llm_latency_seconds", r.value, model=r.model, endpoint=r.endpoint, quantile=r.quantile)
        )
    return recs


def analyze_operational(ctx: AnalysisContext) -> AnalyzerResult:
    counts = request_counts(ctx)
    quantiles = latency_quantiles(ctx)
    notes = []
    if counts.empty:
        notes.append("no data: the window holds no accepted rows")
    elif quantiles.empty:
        notes.append("no latency: the table has no latency_seconds values in this window")
    return AnalyzerResult(
        "operational",
        tuple(operational_records(counts, quantiles, ctx.window.minutes)),
        tuple(notes),
    )
