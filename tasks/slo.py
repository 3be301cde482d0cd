"""SLO figures per window: good and total events, burn rates over the workbook's spans,
the error budget left over the period, and whether a page or ticket tier burns too fast.

The window's events are counted in the warehouse (one scan, two conditional sums per
SLO). Everything over longer spans comes from the windows already stored: this
granularity's `slo_events` and `slo_good_events` of the same SLO, so a run reads one
window of rows however long the period (as the budgets do, aimon.tasks.cost). The
arithmetic is aimon.config.slos (shared with `aimon slo rules`); docs/slos.md shows it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from aimon.config.slos import TIERS, BurnCheck, SLOConfig, burn_checks, span_label, spans
from aimon.records import AnalyzerResult, MetricRecord
from aimon.store.metrics import Store
from aimon.tasks.contract import valid_rows
from aimon.tasks.orchestration.context import AnalysisContext, endpoint_expr, status_class_expr
from aimon.windows import Window

Counts = tuple[float, float]  # (events, good events) of one window


def _condition(ctx: AnalysisContext, slo: SLOConfig) -> tuple[Any, Any] | None:
    """(the SLO's events, its good events) as SQL predicates; None when the table
    cannot say (a latency SLO without a latency_seconds column)."""
    ix = ctx.interactions
    scope = []
    if slo.model is not None:
        scope.append(sa.cast(ix.req("model"), sa.String) == sa.literal(slo.model))
    if slo.endpoint is not None:
        scope.append(endpoint_expr(ix) == sa.literal(slo.endpoint))
    if slo.sli.type == "availability":
        good: Any = status_class_expr(ix) == sa.literal_column("'ok'")
    else:
        lat = ix.col("latency_seconds")
        if lat is None:
            return None
        scope.append(lat.is_not(None))
        good = lat <= sa.literal(float(slo.sli.threshold_seconds))
    event = sa.and_(sa.true(), *scope)
    return event, sa.and_(event, good)


def window_counts(ctx: AnalysisContext) -> tuple[dict[str, Counts], list[str]]:
    """Per SLO name, the window's (events, good events), counted in the warehouse;
    and notes for the SLOs the table cannot count."""
    aggs: list[Any] = []
    names: list[str] = []
    notes: list[str] = []
    for i, slo in enumerate(ctx.cfg.slos):
        cond = _condition(ctx, slo)
        if cond is None:
            notes.append(f"slo {slo.name}: skipped, the table has no latency_seconds column")
            continue
        event, good = cond
        one: Any = sa.literal_column("1")
        zero: Any = sa.literal_column("0")
        aggs += [
            sa.func.sum(sa.case((event, one), else_=zero)).label(f"e{i}"),
            sa.func.sum(sa.case((good, one), else_=zero)).label(f"g{i}"),
        ]
        names.append(f"{i}:{slo.name}")
    if not aggs:
        return {}, notes
    ix = ctx.interactions
    stmt = sa.select(*aggs).select_from(ix.table).where(ix.in_window(), valid_rows(ix))
    (row,) = ctx.warehouse.fetch(stmt, ctx.params)
    out = {}
    for key in names:
        idx, name = key.split(":", 1)
        out[name] = (float(row[f"e{idx}"] or 0), float(row[f"g{idx}"] or 0))
    return out, notes


def stored_counts(store: Store, slo: SLOConfig, window: Window, since: dt.datetime) -> dict[dt.datetime, Counts]:
    """The SLO's stored counts of this granularity's windows from `since` up to (not
    including) `window`, by window start."""
    got: dict[dt.datetime, list[float]] = {}
    for i, metric in enumerate(("slo_events", "slo_good_events")):
        for f in store.figures(
            granularity=window.granularity, metric=metric, labels={"slo": slo.name}, start_from=since,
            before=window.start,
        ):  # fmt: skip
            got.setdefault(f.window_start, [0.0, 0.0])[i] = f.value
    return {k: (v[0], v[1]) for k, v in got.items()}


@dataclass(frozen=True)
class SpanBurn:
    span: dt.timedelta
    events: float
    good: float
    windows: int  # windows found in the span
    expected: int  # windows the span holds

    def burn_rate(self, budget: float) -> float | None:
        """Error ratio / error budget; None without events."""
        if self.events <= 0:
            return None
        return ((self.events - self.good) / self.events) / budget


def span_totals(history: Mapping[dt.datetime, Counts], window: Window, span: dt.timedelta) -> SpanBurn:
    """Sum of the windows that start within `span` before the window's end (the window included)."""
    since = window.end - span
    inside = [c for start, c in history.items() if since <= start < window.end]
    expected = max(1, round(span / (window.end - window.start)))
    return SpanBurn(span, sum(c[0] for c in inside), sum(c[1] for c in inside), len(inside), expected)


def slo_figures(
    slo: SLOConfig, window: Window, history: Mapping[dt.datetime, Counts]
) -> tuple[list[MetricRecord], list[str], dict[str, Any]]:
    """The SLO's figures for `window`, given the counts of it and earlier windows by
    start (`history` holds the window's own counts under window.start)."""
    budget = slo.error_budget
    checks = burn_checks(slo.period_delta, window.granularity)
    recs: list[MetricRecord] = []
    notes: list[str] = []
    events, good = history.get(window.start, (0.0, 0.0))
    recs.append(MetricRecord.of("slo_events", events, slo=slo.name))
    recs.append(MetricRecord.of("slo_good_events", good, slo=slo.name))

    by_span = {s: span_totals(history, window, s) for s in spans(checks)}
    rates = {s: b.burn_rate(budget) for s, b in by_span.items()}
    for s, rate in rates.items():
        if rate is not None:
            recs.append(MetricRecord.of("slo_burn_rate", rate, slo=slo.name, span=span_label(s)))
    gaps = [b for b in by_span.values() if b.windows < b.expected]
    if gaps:
        b = max(gaps, key=lambda g: g.span)
        notes.append(
            f"slo {slo.name}: burn over {span_label(b.span)} from {b.windows} of {b.expected} "
            f"{window.granularity} windows stored (backfill the rest for an exact figure)"
        )

    period = span_totals(history, window, slo.period_delta)
    remaining = None
    if period.events > 0:
        remaining = 1.0 - (period.events - period.good) / (budget * period.events)
        recs.append(MetricRecord.of("slo_error_budget_remaining", remaining, slo=slo.name))

    fired: dict[str, list[BurnCheck]] = {t: [] for t in TIERS}
    for c in checks:
        short, long_ = rates[c.short], rates[c.long]
        if short is None or long_ is None or short <= c.factor or long_ <= c.factor:
            continue
        if by_span[c.short].events < slo.min_events:
            notes.append(
                f"slo {slo.name}: {c.row.name} burn not judged: {by_span[c.short].events:.0f} events in "
                f"{span_label(c.short)}, fewer than min_events {slo.min_events}"
            )
            continue
        fired[c.tier].append(c)
    for tier in TIERS:
        recs.append(MetricRecord.of("slo_burn_alert", 1.0 if fired[tier] else 0.0, slo=slo.name, tier=tier))
        for c in fired[tier]:
            notes.append(
                f"slo {slo.name}: {tier} ({c.row.name} burn): burn rate {rates[c.long]:.1f}x over "
                f"{span_label(c.long)} and {rates[c.short]:.1f}x over {span_label(c.short)}, above "
                f"{c.factor:g}x ({c.row.budget_share:.0%} of the {slo.period} error budget in "
                f"{span_label(c.row.long)})"
            )
    details = {
        "objective": slo.objective,
        "period": slo.period,
        "burn_rates": {span_label(s): r for s, r in rates.items()},
        "error_budget_remaining": remaining,
        "alerts": {t: [c.row.name for c in fired[t]] for t in TIERS},
    }
    return recs, notes, details


def analyze_slo(ctx: AnalysisContext) -> AnalyzerResult:
    slos: Sequence[SLOConfig] = ctx.cfg.slos
    if not slos:
        return AnalyzerResult("slo", ())
    counts, notes = window_counts(ctx)
    recs: list[MetricRecord] = []
    details: dict[str, Any] = {}
    for slo in slos:
        if slo.name not in counts:
            continue
        history: dict[dt.datetime, Counts] = dict(
            stored_counts(ctx.store, slo, ctx.window, ctx.window.end - slo.period_delta)
        )
        history[ctx.window.start] = counts[slo.name]
        r, n, d = slo_figures(slo, ctx.window, history)
        recs += r
        notes += n
        details[slo.name] = d
    return AnalyzerResult("slo", tuple(recs), tuple(notes), {"slos": details})
