"""Cache potential, computed in the warehouse: no prompt text reaches Python.

Exact-match cache: a request whose normalised prompt (whitespace collapsed, and
`cache.template_pattern` replaced by ``<var>``) repeats an earlier request's on the same
model and endpoint, in the window or the `cache.lookback_windows` before it, could
have been served from a cache. Prompts are grouped by a hash of the normalised text
(DuckDB's 64-bit ``hash``, ``md5`` elsewhere); per group, every in-window request but
the first is a repeat (all of them when the group was seen in the lookback). The
dollars of the repeats are the group's token sums x repeats / requests, priced like
the cost analyzer prices (identical prompts carry identical input tokens; outputs are
averaged within the group), so a cache's saving is exact for input and a group mean
for output.

Provider prompt cache: the share of input tokens already served from it
(``cached_input_tokens`` / ``input_tokens``) beside an estimate of what is cacheable:
requests longer than `cache.prefix_chars` characters whose first `prefix_chars`
repeat an earlier request's, counted with that prefix's share of their characters (a
lower bound when the shared prefix is longer; shorter prompts are the exact cache's).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa

from aimon.config.costopt import CacheConfig
from aimon.records import ALL, MetricRecord
from aimon.tasks.contract import valid_rows
from aimon.tasks.cost import numeric_frame, price_at, price_frame, price_segment, token_aggregates
from aimon.tasks.orchestration.context import AnalysisContext, endpoint_expr, rollup


@dataclass
class CacheFindings:
    records: list[MetricRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Per (model, endpoint): requests, repeats, repeat_cost, prefix_saving (USD in the window).
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


def _text(value: str) -> sa.ColumnElement[Any]:
    return sa.literal_column("'" + value.replace("'", "''") + "'")


def normalised_prompt(ctx: AnalysisContext, cfg: CacheConfig) -> sa.ColumnElement[Any]:
    # Collapse first, then trim: SQL's trim() drops spaces only, so a trailing newline
    # must have become a space first.
    p = sa.cast(ctx.interactions.req("prompt"), sa.String)
    norm: sa.ColumnElement[Any] = sa.func.trim(sa.func.regexp_replace(p, _text(r"\s+"), _text(" "), _text("g")))
    if cfg.template_pattern:
        norm = sa.func.regexp_replace(norm, _text(cfg.template_pattern), _text("<var>"), _text("g"))
    return norm


def text_hash(ctx: AnalysisContext, expr: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.func.hash(expr) if ctx.warehouse.backend == "duckdb" else sa.func.md5(expr)


def _window_from(ctx: AnalysisContext, lookback: int) -> dt.datetime:
    return ctx.window.start - lookback * (ctx.window.end - ctx.window.start)


def repeat_sums(ctx: AnalysisContext, cfg: CacheConfig, boundaries: Sequence[dt.datetime]) -> pd.DataFrame:
    """Per model, endpoint and price segment: requests with a prompt, repeats, and the
    repeats' share of the token sums (the columns price_frame prices)."""
    ix = ctx.interactions
    ts = ix.req("timestamp")
    lookback = cfg.lookback_windows
    in_win = ts >= sa.bindparam("window_start", type_=sa.DateTime)
    segment = price_segment(ctx, boundaries)
    n_seg = len(boundaries) + 1
    aggs: list[Any] = []
    names: list[str] = []
    for i in range(n_seg):
        keep: sa.ColumnElement[bool] | None = None
        if n_seg > 1:
            keep = sa.and_(in_win, segment == sa.literal_column(str(i)))
        elif lookback:
            keep = in_win
        for a in token_aggregates(ctx, keep):
            aggs.append(a.element.label(f"s{i}__{a.name}"))
            names.append(f"s{i}__{a.name}")
    key = text_hash(ctx, normalised_prompt(ctx, cfg))
    inner = (
        sa.select(
            sa.cast(ix.req("model"), sa.String).label("g_model"),
            endpoint_expr(ix).label("g_endpoint"),
            key.label("g_key"),
            sa.func.sum(sa.case((in_win, 1), else_=0)).label("n_win"),
            sa.func.sum(sa.case((in_win, 0), else_=1)).label("n_before"),
            *aggs,
        )
        .select_from(ix.table)
        .where(
            ts >= sa.bindparam("cache_from", _window_from(ctx, lookback), type_=sa.DateTime),
            ts < sa.bindparam("window_end", type_=sa.DateTime),
            valid_rows(ix),
            ix.req("prompt").is_not(None),
        )
        .group_by(sa.literal_column("g_model"), sa.literal_column("g_endpoint"), sa.literal_column("g_key"))
        .subquery("prompts")
    )
    rep = inner.c.n_win - sa.case((inner.c.n_before == 0, 1), else_=0)
    share = sa.cast(rep, sa.Double) / sa.cast(inner.c.n_win, sa.Double)
    outer = (
        sa.select(
            inner.c.g_model,
            inner.c.g_endpoint,
            sa.func.sum(inner.c.n_win).label("requests"),
            sa.func.sum(rep).label("repeats"),
            *[sa.func.sum(sa.cast(inner.c[n], sa.Double) * share).label(n) for n in names],
        )
        .where(inner.c.n_win > 0)
        .group_by(inner.c.g_model, inner.c.g_endpoint)
    )
    df = pd.DataFrame(ctx.warehouse.fetch(outer, ctx.params), columns=[c.key for c in outer.selected_columns])
    df = numeric_frame(df.rename(columns={"g_model": "model", "g_endpoint": "endpoint"}), ["model", "endpoint"])
    parts = []
    for i in range(n_seg):
        prefix = f"s{i}__"
        cols = {n: n[len(prefix) :] for n in names if n.startswith(prefix)}
        part = df[["model", "endpoint", "requests", "repeats", *cols]].rename(columns=cols)
        parts.append(part.assign(segment=float(i)))
    return pd.concat(parts, ignore_index=True)


def prefix_tokens(ctx: AnalysisContext, cfg: CacheConfig) -> pd.DataFrame:
    """Per model and endpoint: input and cached input tokens of the window's prompt
    rows, and the estimated tokens of their repeated `prefix_chars`-character prefixes."""
    ix = ctx.interactions
    ts = ix.req("timestamp")
    inp = ix.req("input_tokens")
    cached = ix.col("cached_input_tokens")
    cached = sa.literal_column("0") if cached is None else cached
    in_win = ts >= sa.bindparam("window_start", type_=sa.DateTime)
    norm = normalised_prompt(ctx, cfg)
    chars: sa.ColumnElement[Any] = sa.literal_column(str(int(cfg.prefix_chars)))
    length = sa.func.length(norm)
    # A prompt no longer than the prefix is all prefix: an exact-match case, left to the
    # exact cache above (so the two estimates do not count the same short prompts).
    frac = sa.case(
        (length <= chars, sa.literal_column("0.0")), else_=sa.cast(chars, sa.Double) / sa.cast(length, sa.Double)
    )
    inner = (
        sa.select(
            sa.cast(ix.req("model"), sa.String).label("g_model"),
            endpoint_expr(ix).label("g_endpoint"),
            text_hash(ctx, sa.func.substr(norm, 1, chars)).label("g_key"),
            sa.func.sum(sa.case((in_win, 1), else_=0)).label("n_win"),
            sa.func.sum(sa.case((in_win, 0), else_=1)).label("n_before"),
            sa.func.sum(sa.case((in_win, inp), else_=None)).label("tokens"),
            sa.func.sum(sa.case((in_win, sa.cast(inp, sa.Double) * frac), else_=None)).label("prefix"),
            sa.func.sum(sa.case((in_win, cached), else_=None)).label("cached"),
        )
        .select_from(ix.table)
        .where(
            ts >= sa.bindparam("cache_from", _window_from(ctx, cfg.lookback_windows), type_=sa.DateTime),
            ts < sa.bindparam("window_end", type_=sa.DateTime),
            valid_rows(ix),
            ix.req("prompt").is_not(None),
            inp.is_not(None),
        )
        .group_by(sa.literal_column("g_model"), sa.literal_column("g_endpoint"), sa.literal_column("g_key"))
        .subquery("prefixes")
    )
    rep = inner.c.n_win - sa.case((inner.c.n_before == 0, 1), else_=0)
    share = sa.cast(rep, sa.Double) / sa.cast(inner.c.n_win, sa.Double)
    outer = (
        sa.select(
            inner.c.g_model.label("model"),
            inner.c.g_endpoint.label("endpoint"),
            sa.func.sum(inner.c.tokens).label("prompt_input_tokens"),
            sa.func.sum(inner.c.prefix * share).label("cacheable_tokens"),
            sa.func.sum(inner.c.cached).label("prompt_cached_tokens"),
        )
        .where(inner.c.n_win > 0)
        .group_by(inner.c.g_model, inner.c.g_endpoint)
    )
    df = pd.DataFrame(ctx.warehouse.fetch(outer, ctx.params), columns=[c.key for c in outer.selected_columns])
    return numeric_frame(df, ["model", "endpoint"])


def cache_findings(
    ctx: AnalysisContext, cfg: CacheConfig, boundaries: Sequence[dt.datetime], spend: pd.DataFrame
) -> CacheFindings:
    """`spend`: the window's priced token sums per (model, endpoint, segment)."""
    out = CacheFindings()
    ix = ctx.interactions
    if not ix.has("prompt"):
        out.notes.append("cache potential skipped: the table has no prompt column")
        return out
    pricing = ctx.cfg.pricing
    reps = price_frame(repeat_sums(ctx, cfg, boundaries), pricing, ctx.window, boundaries)
    per = reps.groupby(["model", "endpoint"], as_index=False).agg(
        requests=("requests", "max"), repeats=("repeats", "max"), repeat_cost=("cost", "sum")
    )
    per["prefix_saving"] = 0.0
    served = spend.groupby(["model", "endpoint"], as_index=False)[
        [c for c in ("input_tokens", "cached_input_tokens") if c in spend]
    ].sum()
    if ix.has("input_tokens"):
        pre = prefix_tokens(ctx, cfg)
        per = per.merge(pre, on=["model", "endpoint"], how="left").fillna(0.0)
        per = per.merge(served, on=["model", "endpoint"], how="left").fillna(0.0)
        for c in ("input_tokens", "cached_input_tokens"):
            if c not in per:
                per[c] = 0.0
        per["prefix_saving"] = [_prefix_saving(ctx, r) for r in per.itertuples(index=False)]
    sums = [c for c in per.columns if c not in ("model", "endpoint")]
    by_endpoint = per.groupby("endpoint", as_index=False)[sums].sum().assign(model=ALL) if len(per) else None
    totals = pd.concat([rollup(per, sums), by_endpoint], ignore_index=True)  # and per endpoint, all models
    small = []
    for r in totals.itertuples(index=False):
        labels = {"model": r.model, "endpoint": r.endpoint}
        out.records.append(MetricRecord.of("llm_cache_requests", r.requests, **labels))
        if r.requests < cfg.min_requests:
            if r.model != ALL and r.endpoint != ALL:
                small.append(f"{r.model} {r.endpoint} ({int(r.requests)})")
            continue
        out.records.append(MetricRecord.of("llm_cache_repeat_share", r.repeats / r.requests, **labels))
        out.records.append(MetricRecord.of("llm_cache_repeat_cost_usd", r.repeat_cost, **labels))
        d = r._asdict()
        if d.get("input_tokens"):
            out.records.append(
                MetricRecord.of("llm_prompt_cache_served_share", d["cached_input_tokens"] / d["input_tokens"], **labels)
            )
        if d.get("prompt_input_tokens"):
            out.records.append(
                MetricRecord.of(
                    "llm_prompt_cache_cacheable_share", d["cacheable_tokens"] / d["prompt_input_tokens"], **labels
                )
            )
    if small:
        out.notes.append(
            f"cache potential not judged (fewer than {cfg.min_requests} requests with a prompt): " + ", ".join(small)
        )
    out.table = per[(per["requests"] >= cfg.min_requests)].reset_index(drop=True)
    return out


def _prefix_saving(ctx: AnalysisContext, r: Any) -> float:
    """USD in the window if the estimated cacheable prefix tokens not yet served from the
    provider's cache were billed at the cached-input price (0 without one)."""
    entry = price_at(ctx.cfg.pricing, str(r.model), ctx.window.start)
    if entry is None or entry.cached_input_per_1m is None:
        return 0.0
    extra = max(0.0, float(r.cacheable_tokens) - float(r.prompt_cached_tokens))
    return extra * (entry.input_per_1m - entry.cached_input_per_1m) / 1e6
