"""The warehouse side: which metrics of an experiment can be read and as what SQL
(plan_metrics), and one window's sufficient statistics per variant and metric, with
the assignments (window_stats: one GROUP BY over the interactions, and one over the
requests joined to their feedback when a metric needs it).

The unit of analysis is the request (the row): per-window sums add up only for units
that live in one window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from aimon.config import AB_DERIVED_COLUMNS, CONTRACT_COLUMNS, ABMetricConfig, ExperimentConfig
from aimon.errors import ContractError
from aimon.stats.abtests import Moments
from aimon.store.abstats import ASSIGNMENTS, OTHER_VARIANT, StatRow
from aimon.tasks.contract import valid_rows
from aimon.tasks.orchestration.context import AnalysisContext, status_class_expr
from aimon.warehouse import window_params
from aimon.windows import Window


@dataclass(frozen=True)
class MetricSql:
    """A usable metric and its SQL value(s): x, and y for a ratio metric."""

    metric: ABMetricConfig
    x: sa.ColumnElement[Any]
    y: sa.ColumnElement[Any] | None = None


def interaction_column(ctx: AnalysisContext, name: str) -> sa.ColumnElement[Any] | None:
    ix = ctx.interactions
    if name == "error":
        return sa.case((status_class_expr(ix) != "ok", 1), else_=0)
    if name in CONTRACT_COLUMNS:
        return ix.col(name)
    if name in ix.all_columns:
        # A non-contract column of the table: quoted and qualified by the dialect.
        prep = ctx.warehouse.engine.dialect.identifier_preparer
        return sa.literal_column(f"{prep.format_table(ix.table)}.{prep.quote(name)}")
    return None


def plan_metrics(
    ctx: AnalysisContext, exp: ExperimentConfig
) -> tuple[sa.FromClause, list[MetricSql], list[str], list[ABMetricConfig]]:
    """The FROM clause (interactions, joined to feedback when a metric needs it),
    the SQL value of each usable metric, and notes for the skipped ones."""
    ix = ctx.interactions
    notes: list[str] = []
    skipped: list[ABMetricConfig] = []
    fb_metrics = [m for m in exp.metrics if m.source == "feedback"]
    from_: sa.FromClause = ix.table
    fb: sa.Subquery | None = None
    fb_table = ctx.cfg.warehouse.feedback_table
    if fb_metrics:
        reason = None
        fb_cols: tuple[str, ...] = ()
        if fb_table is None:
            reason = "warehouse.feedback_table is not set"
        elif not ix.has("request_id"):
            reason = "the interactions table has no request_id to join feedback on"
        else:
            try:
                fb_cols = ctx.warehouse.table_columns(fb_table)
            except ContractError as err:
                reason = str(err)
        if reason is None and "request_id" not in fb_cols:
            reason = f"feedback table {fb_table!r} has no request_id column"
        usable = []
        for m in fb_metrics:
            if reason is not None or m.column not in fb_cols:
                skipped.append(m)
                notes.append(
                    f"experiment {exp.name}: metric {m.name} skipped: "
                    + (reason or f"feedback table {fb_table!r} has no column {m.column!r}")
                )
            else:
                usable.append(m)
        if usable and fb_table is not None:
            schema, _, name = fb_table.rpartition(".")
            cols = {m.column for m in usable if m.column}
            extra = ["timestamp"] if "timestamp" in fb_cols else []
            ft = sa.table(
                name, sa.column("request_id"), *[sa.column(c) for c in sorted(cols) + extra], schema=schema or None
            )
            aggs = []
            for c in sorted(cols):
                kinds = {m.type for m in usable if m.column == c}
                # Several feedback rows for one request: the mean rating, and "any" for a flag.
                if "binary" in kinds:
                    aggs.append(sa.func.max(sa.cast(ft.c[c], sa.Integer)).label(f"b_{c}"))
                if "continuous" in kinds:
                    aggs.append(sa.func.avg(sa.cast(ft.c[c], sa.Double)).label(f"c_{c}"))
            fb_q = sa.select(ft.c.request_id, *aggs).group_by(ft.c.request_id)
            if extra:
                # Feedback never precedes its request: read only what can belong to
                # this window, not the feedback table's whole history.
                fb_q = fb_q.where(ft.c.timestamp >= sa.bindparam("window_start", type_=sa.DateTime))
            fb = fb_q.subquery("ab_fb")
            # An inner join, in a query of its own (window_stats): the feedback metrics
            # only count rated requests, and the interaction metrics stay a plain scan.
            from_ = sa.join(ix.table, fb, fb.c.request_id == ix.req("request_id"))

    plans: list[MetricSql] = []
    for m in exp.metrics:
        if m in skipped:
            continue
        if m.source == "feedback":
            assert fb is not None and m.column is not None
            prefix = "b" if m.type == "binary" else "c"
            plans.append(MetricSql(m, fb.c[f"{prefix}_{m.column}"]))
            continue
        exprs = [interaction_column(ctx, c) for c in m.columns]
        missing = [c for c, e in zip(m.columns, exprs, strict=True) if e is None]
        if missing:
            skipped.append(m)
            notes.append(
                f"experiment {exp.name}: metric {m.name} skipped: table {ctx.cfg.warehouse.interactions_table!r} "
                f"has no column {', '.join(repr(c) for c in missing)} (valid: a contract column, "
                f"{', '.join(AB_DERIVED_COLUMNS)}, or a column of the table)"
            )
            continue
        if m.type == "binary":
            plans.append(MetricSql(m, sa.cast(exprs[0], sa.Integer)))
        elif m.type == "continuous":
            plans.append(MetricSql(m, sa.cast(exprs[0], sa.Double)))
        else:
            plans.append(MetricSql(m, sa.cast(exprs[0], sa.Double), sa.cast(exprs[1], sa.Double)))
    return from_, plans, notes, skipped


def window_stats(
    ctx: AnalysisContext, exp: ExperimentConfig, from_: sa.FromClause, plans: Sequence[MetricSql], window: Window
) -> tuple[list[StatRow], dict[str, int]]:
    """The window's moments per configured variant and metric (zeros included, so a
    stored window is known to be complete), and the counts of unconfigured variants."""
    ix = ctx.interactions
    where = sa.and_(
        ix.in_window(),
        valid_rows(ix),
        sa.cast(ix.req("experiment"), sa.String) == sa.bindparam("ab_experiment", exp.name),
    )

    def aggregate(source: sa.FromClause, indexed: list[tuple[int, MetricSql]], count: bool) -> dict[str, Any]:
        variant = sa.cast(ix.req("variant"), sa.String).label("g_variant")
        cols: list[Any] = [variant] + ([sa.func.count().label("n")] if count else [])
        for i, p in indexed:
            x, y = p.x, p.y
            if y is None:
                cols += [
                    sa.func.count(x).label(f"m{i}_n"),
                    sa.func.sum(x).label(f"m{i}_sx"),
                    sa.func.sum(x * x).label(f"m{i}_sx2"),
                ]
                if p.metric.type == "binary":
                    cols += [sa.func.min(x).label(f"m{i}_min"), sa.func.max(x).label(f"m{i}_max")]
            else:
                both = sa.and_(x.is_not(None), y.is_not(None))
                cols += [
                    sa.func.sum(sa.case((both, 1), else_=0)).label(f"m{i}_n"),
                    sa.func.sum(sa.case((both, x))).label(f"m{i}_sx"),
                    sa.func.sum(sa.case((both, x * x))).label(f"m{i}_sx2"),
                    sa.func.sum(sa.case((both, y))).label(f"m{i}_sy"),
                    sa.func.sum(sa.case((both, y * y))).label(f"m{i}_sy2"),
                    sa.func.sum(sa.case((both, x * y))).label(f"m{i}_sxy"),
                ]
        q = sa.select(*cols).select_from(source).where(where).group_by(sa.literal_column("g_variant"))
        return {
            str(r["g_variant"]) if r["g_variant"] is not None else "(null)": r
            for r in ctx.warehouse.fetch(q, window_params(window))
        }

    indexed = list(enumerate(plans))
    found = aggregate(ctx.interactions.table, [ip for ip in indexed if ip[1].metric.source != "feedback"], True)
    feedback = [ip for ip in indexed if ip[1].metric.source == "feedback"]
    if feedback:
        for v, r in aggregate(from_, feedback, False).items():
            found[v] = {**found.get(v, {}), **r}

    def num(r: Mapping[str, Any], key: str) -> float:
        v = r.get(key)
        return 0.0 if v is None else float(v)

    rows: list[StatRow] = []
    for v in exp.variants:
        r = found.get(v, {})
        rows.append(StatRow(v, ASSIGNMENTS, Moments(int(num(r, "n")))))
        for i, p in enumerate(plans):
            if r and p.metric.type == "binary" and r.get(f"m{i}_n"):
                lo, hi = num(r, f"m{i}_min"), num(r, f"m{i}_max")
                if lo < 0 or hi > 1:
                    raise ValueError(
                        f"experiment {exp.name}: binary metric {p.metric.name!r} has values from {lo:g} to {hi:g} "
                        f"in column {p.metric.column!r} (window {window}); a binary metric needs 0/1 or "
                        "true/false: use type continuous"
                    )
            rows.append(
                StatRow(
                    v,
                    p.metric.name,
                    Moments(
                        int(num(r, f"m{i}_n")),
                        num(r, f"m{i}_sx"),
                        num(r, f"m{i}_sx2"),
                        num(r, f"m{i}_sy"),
                        num(r, f"m{i}_sy2"),
                        num(r, f"m{i}_sxy"),
                    ),
                )
            )
    others = {str(k): int(num(r, "n")) for k, r in found.items() if k not in exp.variants}
    if others:
        rows.append(StatRow(OTHER_VARIANT, ASSIGNMENTS, Moments(sum(others.values()))))
    return rows, others


def first_seen(ctx: AnalysisContext, exp: ExperimentConfig, before: dt.datetime) -> dt.datetime | None:
    """The earliest timestamp of the experiment's valid rows before `before`."""
    ix = ctx.interactions
    ts = ix.req("timestamp")
    q = sa.select(sa.func.min(ts)).where(
        ts < sa.bindparam("ab_before", before, type_=sa.DateTime),
        valid_rows(ix),
        sa.cast(ix.req("experiment"), sa.String) == sa.bindparam("ab_experiment", exp.name),
    )
    v = ctx.warehouse.scalar(q)
    if v is None:
        return None
    return v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(str(v))


def window_stats_zero(exp: ExperimentConfig, plans: Sequence[MetricSql]) -> tuple[list[StatRow], dict[str, int]]:
    """The statistics of a window before the experiment's first row, without a query."""
    rows = [StatRow(v, ASSIGNMENTS, Moments()) for v in exp.variants]
    rows += [StatRow(v, p.metric.name, Moments()) for v in exp.variants for p in plans]
    return rows, {}
