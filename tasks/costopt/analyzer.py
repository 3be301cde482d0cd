"""The cost-optimisation analyzer: where the money goes and what to change.

Parts (each skipped with its reason when the table cannot support it, the rest still
running): cache potential (cache.py), token quantiles, long-prompt share, truncation and
cost per grouping column (tokens.py), cheaper-model candidates (switch.py), and the
ranked recommendations (recommend.py). Every read is an aggregate in the warehouse; no
text column is read into Python.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from aimon.records import AnalyzerResult, MetricRecord
from aimon.tasks.cost import TOKEN_TYPES, price_boundaries
from aimon.tasks.costopt.cache import cache_findings
from aimon.tasks.costopt.recommend import Recommendation, as_details, ranked, saving_records
from aimon.tasks.costopt.switch import switch_findings
from aimon.tasks.costopt.tokens import group_costs, spend_shape, token_quantiles
from aimon.tasks.orchestration.context import AnalysisContext


def cache_recommendations(table: pd.DataFrame, scale: float, lookback: int, prefix_chars: int) -> list[Recommendation]:
    recs = []
    seen = "in the window" if not lookback else f"in the window or the {lookback} before it"
    for r in table.itertuples(index=False):
        labels = {"model": str(r.model), "endpoint": str(r.endpoint)}
        if r.repeats and r.repeat_cost > 0:
            recs.append(
                Recommendation(
                    kind="cache",
                    action=f"cache {r.endpoint} prompts on {r.model}",
                    monthly_usd=float(r.repeat_cost) * scale,
                    evidence=(
                        f"{r.repeats / r.requests:.0%} of {int(r.requests):,} requests repeat an earlier prompt {seen}"
                    ),
                    # Measured repeats; whether a cached answer may be reused is the app's call.
                    confidence="medium",
                    labels=labels,
                )
            )
        d = r._asdict()
        if d.get("prefix_saving", 0.0) > 0 and d.get("input_tokens"):
            recs.append(
                Recommendation(
                    kind="prompt_cache",
                    action=f"use the provider's prompt cache for {r.endpoint} on {r.model}",
                    monthly_usd=float(d["prefix_saving"]) * scale,
                    evidence=(
                        f"{d['cached_input_tokens'] / d['input_tokens']:.0%} of input tokens served from it, "
                        f"~{d['cacheable_tokens'] / d['input_tokens']:.0%} in repeated "
                        f"{prefix_chars}-character prefixes of long prompts"
                    ),
                    confidence="low",  # an estimate from prompt prefixes, not a measured hit rate
                    labels=labels,
                )
            )
    return recs


def analyze_costopt(ctx: AnalysisContext) -> AnalyzerResult:
    cfg = ctx.cfg.cost.optimisation
    ix = ctx.interactions
    if not cfg.enabled:
        return AnalyzerResult("costopt", (), ("cost optimisation off (cost.optimisation.enabled)",))
    if not any(ix.has(c) for c in TOKEN_TYPES) and not ix.has("cost_usd"):
        return AnalyzerResult("costopt", (), ("cost optimisation skipped: no token columns and no cost_usd",))
    boundaries = price_boundaries(ctx.cfg.pricing, ctx.window)
    scale = cfg.month_days * 86400.0 / (ctx.window.end - ctx.window.start).total_seconds()
    records: list[MetricRecord] = []
    notes: list[str] = []
    recs: list[Recommendation] = []
    details: dict[str, Any] = {}

    quantiles, thresholds = token_quantiles(ctx, cfg)
    shape, shape_notes, spend = spend_shape(ctx, cfg, boundaries, thresholds)
    records += quantiles + shape
    notes += shape_notes

    if cfg.cache.enabled:
        cache = cache_findings(ctx, cfg.cache, boundaries, spend)
        records += cache.records
        notes += cache.notes
        recs += cache_recommendations(cache.table, scale, cfg.cache.lookback_windows, cfg.cache.prefix_chars)

    for group in cfg.groups:
        g_recs, g_notes = group_costs(ctx, group, boundaries)
        records += g_recs
        notes += g_notes

    if cfg.switch.enabled:
        switch = switch_findings(ctx, cfg.switch, spend, scale)
        records += switch.records
        notes += switch.notes
        recs += switch.recommendations

    best = ranked(recs, cfg.min_saving_usd)
    records += saving_records(best)
    details["recommendations"] = as_details(best)
    return AnalyzerResult("costopt", tuple(records), tuple(notes), details)
