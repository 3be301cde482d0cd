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
from aimon.tasks.cost import exact, numeric_frame, price_at, row_cost_expr
from aimon.tasks.orchestration.context import AnalysisContext, endpoint_expr, rollup


@dataclass
class CacheFindings:
    records: list[MetricRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Per (model, endpoint): requests, repeats, repeat_cost, prefix_saving (USD in the window).
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


def _text(value: str) -> sa.ColumnElement[Any]:
    return sa.literal_column("'" + value.replace("'", "''") + "'")


# ASCII whitespace, spelled out: `\s` differs between RE2 (DuckDB), PostgreSQL's locale
# classes and Python's Unicode class (SQLite), and the figures must not.
WHITESPACE = r"[ \t\n\r\f\v]+"
_NEEDS_WORK = ("%  %", "%\t%", "%\n%", "%\r%", "%\f%", "%\v%", " %", "% ")


def normalised_prompt(
    ctx: AnalysisContext, cfg: CacheConfig, text: sa.ColumnElement[Any] | None = None
) -> sa.ColumnElement[Any]:
    """The prompt with whitespace runs collapsed to one space and trimmed (and the
    template pattern replaced). The regex runs only on prompts that need it (a LIKE
    test first): 0.3 s instead of 2 s per million prompts on DuckDB."""
    p = sa.cast(ctx.interactions.req("prompt"), sa.String) if text is None else text
    needs = sa.or_(*[p.like(_text(pattern)) for pattern in _NEEDS_WORK])
    # Collapse first, then trim: SQL's trim() drops spaces only.
    collapsed = sa.func.trim(sa.func.regexp_replace(p, _text(WHITESPACE), _text(" "), _text("g")))
    norm: sa.ColumnElement[Any] = sa.case((needs, collapsed), else_=p)
    if cfg.template_pattern:
        norm = sa.func.regexp_replace(norm, _text(cfg.template_pattern), _text("<var>"), _text("g"))
    return norm


def text_hash(ctx: AnalysisContext, expr: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.func.hash(expr) if ctx.warehouse.backend == "duckdb" else sa.func.md5(expr)


def _window_from(ctx: AnalysisContext, lookback: int) -> dt.datetime:
    return ctx.window.start - lookback * (ctx.window.end - ctx.window.start)


def _repeat_share(t: Any) -> tuple[Any, Any]:
    """Per prompt group: its in-window repeats (all but the first, unless the lookback
    saw it) and their share of the group's in-window requests."""
    first = sa.case((t.c.n_before == 0, 1), else_=0) if "n_before" in t.c else 1
    rep = t.c.n_win - first
    return rep, sa.cast(rep, sa.Double) / sa.cast(t.c.n_win, sa.Double)


def _window_counts(ctx: AnalysisContext, cfg: CacheConfig) -> tuple[list[Any], Any]:
    """The per-group counts, and a wrapper keeping an aggregate to the window's rows:
    without a lookback every row read is in the window, so no CASE per row."""
    in_win = ctx.interactions.req("timestamp") >= sa.bindparam("window_start", type_=sa.DateTime)
    if not cfg.lookback_windows:
        return [sa.func.count().label("n_win")], lambda x: sa.func.sum(x)
    counts = [
        sa.func.sum(sa.case((in_win, 1), else_=0)).label("n_win"),
        sa.func.sum(sa.case((in_win, 0), else_=1)).label("n_before"),
    ]
    return counts, lambda x: sa.func.sum(sa.case((in_win, x), else_=None))


def _prompt_rows(ctx: AnalysisContext, cfg: CacheConfig, *extra: sa.ColumnElement[bool]) -> list[Any]:
    ix = ctx.interactions
    ts = ix.req("timestamp")
    return [
        ts >= sa.bindparam("cache_from", _window_from(ctx, cfg.lookback_windows), type_=sa.DateTime),
        ts < sa.bindparam("window_end", type_=sa.DateTime),
        valid_rows(ix),
        *extra,
    ]


def _prompt_groups(
    ctx: AnalysisContext,
    cfg: CacheConfig,
    key: sa.ColumnElement[Any],
    sums: Any,
    where: Sequence[sa.ColumnElement[bool]],
    name: str,
) -> Any:
    """The window's (and the lookback's) prompt rows grouped by model, endpoint and
    `key`, with the group's counts and `sums(win)` (`win` keeps an aggregate to the
    window's rows)."""
    ix = ctx.interactions
    counts, win = _window_counts(ctx, cfg)
    return (
        sa.select(
            sa.cast(ix.req("model"), sa.String).label("g_model"),
            endpoint_expr(ix).label("g_endpoint"),
            key.label("g_key"),
            *counts,
            *sums(win),
        )
        .select_from(ix.table)
        .where(*_prompt_rows(ctx, cfg, *where))
        .group_by(*[sa.literal_column(c) for c in ("g_model", "g_endpoint", "g_key")])
        .subquery(name)
    )


def _per_model_endpoint(ctx: AnalysisContext, inner: Any, *sums: Any) -> pd.DataFrame:
    """The prompt groups summed per model and endpoint (groups seen in the window)."""
    stmt = (
        sa.select(inner.c.g_model.label("model"), inner.c.g_endpoint.label("endpoint"), *sums)
        .where(inner.c.n_win > 0)
        .group_by(inner.c.g_model, inner.c.g_endpoint)
    )
    df = pd.DataFrame(ctx.warehouse.fetch(stmt, ctx.params), columns=[c.key for c in stmt.selected_columns])
    return numeric_frame(df, ["model", "endpoint"])


def exact_sums(ctx: AnalysisContext, cfg: CacheConfig, boundaries: Sequence[dt.datetime]) -> pd.DataFrame:
    """Per model and endpoint: requests with a prompt, repeats, and the repeats'
    dollars (each request priced in SQL, aimon.tasks.cost.row_cost_expr: one sum per
    prompt group instead of ten token sums). The key is the `prompt_hash` column when
    the table has one (hashed by the app, no text read here), else a hash of the
    normalised prompt."""
    ix = ctx.interactions
    given = ix.col("prompt_hash")
    if given is None:
        key = text_hash(ctx, normalised_prompt(ctx, cfg))
    else:  # DuckDB groups a 64-bit hash of the logged one faster than its text (7.7M md5 hex: 3.5 s -> 1 s)
        key = sa.func.hash(given) if ctx.warehouse.backend == "duckdb" else given
    source = given if given is not None else ix.req("prompt")
    inner = _prompt_groups(
        ctx,
        cfg,
        key,
        lambda win: [win(row_cost_expr(ctx, boundaries)).label("cost")],
        [source.is_not(None), sa.func.length(sa.cast(source, sa.String)) > 0],
        "prompts",
    )
    rep, share = _repeat_share(inner)
    return _per_model_endpoint(
        ctx,
        inner,
        sa.func.sum(inner.c.n_win).label("requests"),
        sa.func.sum(rep).label("repeats"),
        sa.func.sum(exact(inner.c.cost * share, precision=38)).label("repeat_cost"),
    )


def prefix_sums(ctx: AnalysisContext, cfg: CacheConfig) -> pd.DataFrame:
    """Per model and endpoint, over the prompts longer than `prefix_chars` (a shorter
    one is all prefix: the exact cache's case): their input and cached input tokens,
    and the estimated tokens of their repeated prefixes: a request whose first
    `prefix_chars` characters (after normalising its first 2 x prefix_chars) repeat
    an earlier request's counts prefix_chars / its length of its input tokens."""
    ix = ctx.interactions
    inp = ix.req("input_tokens")
    cached = ix.col("cached_input_tokens")
    raw = sa.cast(ix.req("prompt"), sa.String)
    chars: sa.ColumnElement[Any] = sa.literal_column(str(int(cfg.prefix_chars)))
    head = sa.func.substr(normalised_prompt(ctx, cfg, sa.func.substr(raw, 1, 2 * int(cfg.prefix_chars))), 1, chars)
    frac = sa.cast(chars, sa.Double) / sa.cast(sa.func.length(raw), sa.Double)
    inner = _prompt_groups(
        ctx,
        cfg,
        text_hash(ctx, head),
        lambda win: [
            win(inp).label("tokens"),
            win(sa.literal_column("0") if cached is None else cached).label("cached"),
            win(exact(sa.cast(inp, sa.Double) * frac, 6)).label("prefix"),
        ],
        [raw.is_not(None), inp.is_not(None), sa.func.length(raw) > chars],
        "prefixes",
    )
    _, share = _repeat_share(inner)
    return _per_model_endpoint(
        ctx,
        inner,
        sa.func.sum(inner.c.tokens).label("long_input_tokens"),
        sa.func.sum(inner.c.cached).label("long_cached_tokens"),
        sa.func.sum(exact(inner.c.prefix * share, 6, precision=38)).label("cacheable_tokens"),
    )


def cache_findings(
    ctx: AnalysisContext, cfg: CacheConfig, boundaries: Sequence[dt.datetime], spend: pd.DataFrame
) -> CacheFindings:
    """`spend`: the window's spend and token sums per (model, endpoint)."""
    out = CacheFindings()
    ix = ctx.interactions
    if not ix.has("prompt") and not ix.has("prompt_hash"):
        out.notes.append("cache potential skipped: the table has no prompt (or prompt_hash) column")
        return out
    per = exact_sums(ctx, cfg, boundaries)
    if ix.has("prompt", "input_tokens"):
        per = per.merge(prefix_sums(ctx, cfg), on=["model", "endpoint"], how="left").fillna(0.0)
    else:
        out.notes.append("prompt-cache estimate skipped: it needs the prompt and input_tokens columns")
    served = spend.groupby(["model", "endpoint"], as_index=False)[
        [c for c in ("input_tokens", "cached_input_tokens") if c in spend]
    ].sum()
    per = per.merge(served, on=["model", "endpoint"], how="left").fillna(0.0)
    for c in ("input_tokens", "cached_input_tokens", "long_input_tokens", "long_cached_tokens", "cacheable_tokens"):
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
        if d.get("input_tokens") and ix.has("prompt"):
            out.records.append(
                MetricRecord.of("llm_prompt_cache_cacheable_share", d["cacheable_tokens"] / d["input_tokens"], **labels)
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
    extra = max(0.0, float(r.cacheable_tokens) - float(r.long_cached_tokens))
    return extra * (entry.input_per_1m - entry.cached_input_per_1m) / 1e6
