"""The drift reads: one window's statistics from the warehouse.

The current window and each reference window are read the same way (read_window):
the numerical features as one Arrow read of only the needed columns, sorted into
exact samples (sketched above CURRENT_EXACT_MAX values); the categorical features
counted in SQL; the embeddings read in (timestamp, request_id) order and subsampled,
hash pre-sampled in the warehouse when the window is big, each row parsed on its own so
a malformed one is left out and counted (aimon.stats.embedding_rows), never fatal. With
orchestration.segments > 1 the numerical samples and the embeddings are read per time
segment, each in its own task (drift_segment, embedding_segment: the segment
functions of aimon.tasks.orchestration.segments), and merged into the same figures.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from aimon.config import EmbeddingDriftConfig
from aimon.errors import ContractError
from aimon.stats import embedding_rows as er
from aimon.stats import stattests as st
from aimon.store.reference import WindowStats
from aimon.tasks.contract import valid_rows
from aimon.tasks.drift.features import (
    THREADS,
    FeatureSpec,
    _categorical,
    _drift_ix,
    _embedding_col,
    _numeric_expr,
    feature_specs,
)
from aimon.tasks.orchestration.context import AnalysisContext
from aimon.tasks.orchestration.segments import map_segments, run_calls, segment_bounds, segmented
from aimon.warehouse import Interactions, window_params
from aimon.windows import Window

# Current columns longer than this are compared through a sketch of this many points
# (CDF error <= 1e-6, far below the sampling noise of 1/sqrt(n)), so a 10M-row window
# holds 16 MB per feature instead of 80 MB; smaller windows are compared exactly.
CURRENT_EXACT_MAX = 1_000_000
# Embeddings: above SQL_SAMPLE_FACTOR x embeddings.cap rows, a hash pre-sample in the
# warehouse (expected SQL_SAMPLE_FACTOR x cap rows; fewer than cap with probability
# ~1e-200 at factor 4) is read instead of the whole column, then subsampled as before.
SQL_SAMPLE_FACTOR = 4
HASH_HEX = 5  # hex digits of the md5 that make a row's bucket
HASH_BUCKETS = 16**HASH_HEX


def numeric_samples(
    ctx: AnalysisContext,
    ix: Interactions,
    num_specs: list[FeatureSpec],
    bounds: Window,
    exact_max: int = CURRENT_EXACT_MAX,
) -> dict[str, st.NumericSample]:
    """The numerical features of the valid rows in `bounds`: one Arrow read, each column
    sorted (THREADS at a time) into an exact sample, sketched above `exact_max` values."""
    stmt = sa.select(*[_numeric_expr(ix, s).label(f"f{i}") for i, s in enumerate(num_specs)])
    stmt = stmt.select_from(ix.table).where(ix.in_window(), valid_rows(ix))
    table = ctx.warehouse.fetch_arrow(stmt, window_params(bounds))
    columns: list[pa.ChunkedArray | None] = list(table.columns)
    del table  # each Arrow column is freed once sorted: peak memory is ~one copy, not two

    def one(i: int) -> st.NumericSample:
        col = columns[i]
        columns[i] = None
        assert col is not None
        exact = st.sample_from_sorted(np.sort(_float_column(col, num_specs[i].name, ix)))
        del col
        return st.sketch(exact, exact_max)

    with ThreadPoolExecutor(THREADS) as pool:
        return dict(zip([s.name for s in num_specs], pool.map(one, range(len(num_specs))), strict=True))


def drift_segment(
    ctx: AnalysisContext, segment: Window, exact_max: int = CURRENT_EXACT_MAX
) -> dict[str, st.NumericSample]:
    """One time segment's numerical samples (a segment function of
    aimon.tasks.orchestration.segments). On a Dask worker `ctx` is the worker's own; the
    features follow from the config."""
    specs, _ = feature_specs(ctx.cfg, ctx.interactions)
    ix = _drift_ix(ctx.interactions, specs, ctx.cfg)
    num_specs = [s for s in specs if s.kind == "numerical"]
    return numeric_samples(ctx, ix, num_specs, segment, exact_max) if num_specs else {}


def merge_numeric(
    parts: list[dict[str, st.NumericSample]], names: list[str], exact_max: int = CURRENT_EXACT_MAX
) -> dict[str, st.NumericSample]:
    """The window's samples from its segments' (the segments cover the window, no overlap).

    Every segment exact (at most `exact_max` values each): the sorted values are merged
    and the sample rebuilt from them, so it holds the very values, mean and standard
    deviation of one read of the window, and is sketched the same way: identical
    figures. A segment with more than `exact_max` values arrives as a sketch (CDF within
    1/exact_max + one row, see stattests.sketch); with k such segments of a window of n
    rows the pooled CDF is within 1/exact_max + k/n of the exact one, and within
    3/exact_max + k/n after the final sketch (whose points weigh at most n/exact_max),
    against 1/exact_max + 1/n for one read: KS statistics differ by at most
    4/exact_max + (k + 1)/n (~4e-6 at the default; tests/test_scale.py)."""
    out: dict[str, st.NumericSample] = {}
    for name in names:
        mine = [p.pop(name) for p in parts if name in p]  # popped: each part is freed once merged
        if all(m.exact for m in mine):
            x = np.concatenate([m.values for m in mine]) if mine else np.empty(0)
            del mine
            x.sort(kind="stable")  # sorted runs, merged
            merged = st.sample_from_sorted(x)
        else:
            merged = st.merge_samples(mine)
            del mine
        out[name] = st.sketch(merged, exact_max)
    return out


def read_window(
    ctx: AnalysisContext,
    ix: Interactions,
    specs: list[FeatureSpec],
    bounds: Window,
    exact_max: int = CURRENT_EXACT_MAX,
) -> tuple[WindowStats, WindowStats]:
    """(exact statistics, storable statistics) of one window: numerical columns as one
    Arrow read, sorted column by column on THREADS threads (or, with
    orchestration.segments > 1, per time segment in its own task, then merged);
    categories counted in SQL. A numerical column of more than `exact_max` values is
    kept as a sketch of `exact_max` points."""
    cfg = ctx.cfg
    params = window_params(bounds)
    where = [ix.in_window(), valid_rows(ix)]
    ecol, e = _embedding_col(ix, cfg), cfg.drift.embeddings
    # The window's rows and its rows with an embedding, in one scan.
    counted = [sa.func.count().label("rows")]
    if ecol is not None and e is not None:
        counted.append(sa.func.count(ecol).label("emb_rows"))
    totals = ctx.warehouse.fetch(sa.select(*counted).select_from(ix.table).where(*where), params)[0]
    rows = int(totals["rows"])
    num_specs = [s for s in specs if s.kind == "numerical"]
    numeric: dict[str, st.NumericSample] = {}
    if num_specs and rows:
        if segmented(ctx):
            parts = map_segments(ctx, functools.partial(drift_segment, exact_max=exact_max), bounds)
            numeric = merge_numeric(parts, [s.name for s in num_specs], exact_max)
        else:
            numeric = numeric_samples(ctx, ix, num_specs, bounds, exact_max)
    categorical = _category_counts(ctx, ix, [s for s in specs if s.kind == "categorical"], where, params)
    emb, emb_rows, rejected = None, 0, {}
    if ecol is not None and e is not None and rows:
        if segmented(ctx):
            emb_rows, sample = embeddings_segmented(ctx, ix, bounds)
        else:
            emb_rows = int(totals["emb_rows"])
            sample = er.combine([], e.dimension)
            if emb_rows:
                column = _embedding_column(ctx, ix, bounds, presample(e, emb_rows))
                sample = er.to_sample(column, e.cap, e.seed, e.dimension)
        emb = sample.matrix if len(sample.matrix) else None
        # Usable rows with an embedding: the share of the rows read (a pre-sample of a big
        # window) that were usable, of all rows with one. Reference windows weigh by it.
        emb_rows = round(emb_rows * sample.usable / sample.read) if sample.read else 0
        rejected = sample.rejected
    exact = WindowStats(rows, numeric, categorical, emb, emb_rows, rejected)
    stored = WindowStats(
        rows, {k: st.sketch(v, cfg.drift.sketch_size) for k, v in numeric.items()}, categorical, emb, emb_rows, rejected
    )
    return exact, stored


def hash_sample(ctx: AnalysisContext, ix: Interactions, fraction: float) -> sa.ColumnElement[bool] | None:
    """A filter keeping ~`fraction` of the rows, by the md5 of request_id (or of the
    timestamp's text): deterministic, computed in the warehouse, and the same rows on
    every warehouse (DuckDB and PostgreSQL have md5; aimon.engines gives SQLite one), so
    a window's figures do not depend on where its rows live. The first HASH_HEX hex
    digits of the digest, compared as text (fixed length, lower case: text order is
    number order; "C" collation on PostgreSQL), are the row's bucket. None when
    fraction >= 1 or the warehouse is another one (then every row is read)."""
    threshold = math.ceil(fraction * HASH_BUCKETS)
    if fraction >= 1 or threshold >= HASH_BUCKETS:
        return None
    if ctx.warehouse.backend not in ("duckdb", "postgresql", "sqlite"):
        return None
    key = ix.req("request_id") if ix.has("request_id") else ix.req("timestamp")
    bucket: Any = sa.func.substr(sa.func.md5(sa.cast(key, sa.String)), 1, HASH_HEX)
    if ctx.warehouse.backend == "postgresql":
        bucket = bucket.collate("C")
    return bucket < f"{threshold:0{HASH_HEX}x}"


def _category_counts(
    ctx: AnalysisContext, ix: Interactions, specs: list[FeatureSpec], where: list[Any], params: dict[str, Any]
) -> dict[str, st.Counts]:
    """Each categorical feature's value counts: one scan with GROUPING SETS where the
    warehouse has them (DuckDB, PostgreSQL), else one GROUP BY per feature."""
    if not specs:
        return {}
    values: dict[str, dict[Any, int]] = {s.name: {} for s in specs}
    if ctx.warehouse.backend in ("duckdb", "postgresql") and len(specs) > 1:
        # A row outside a feature's own filter (error_type of a success) is null for that
        # feature; in the grouping set of feature k only column k is set, and null
        # groups (no value) are dropped.
        exprs = []
        for spec in specs:
            expr, extra = _categorical(ix, spec)
            exprs.append(sa.case((sa.and_(*extra), expr), else_=None) if extra else expr)
        q = (
            sa.select(*[e.label(f"g{i}") for i, e in enumerate(exprs)], sa.func.count().label("n"))
            .select_from(ix.table)
            .where(*where)
            .group_by(sa.func.grouping_sets(*[sa.tuple_(e) for e in exprs]))
        )
        for r in ctx.warehouse.fetch(q, params):
            for i, spec in enumerate(specs):
                if r[f"g{i}"] is not None:
                    values[spec.name][r[f"g{i}"]] = int(r["n"])
                    break
    else:
        for spec in specs:
            expr, extra = _categorical(ix, spec)
            q = (
                sa.select(expr.label("g_value"), sa.func.count().label("n"))
                .select_from(ix.table)
                .where(*where, *extra, expr.is_not(None))
                .group_by(sa.literal_column("g_value"))
            )
            values[spec.name] = {r["g_value"]: int(r["n"]) for r in ctx.warehouse.fetch(q, params)}
    return {name: st.Counts.of(v) for name, v in values.items()}


def presample(e: EmbeddingDriftConfig, rows: int) -> float:
    """The share of a window's embedding rows read from the warehouse: all of them up to
    SQL_SAMPLE_FACTOR x cap rows, else a hash pre-sample of ~SQL_SAMPLE_FACTOR x cap."""
    return min(1.0, SQL_SAMPLE_FACTOR * e.cap / rows) if rows else 1.0


def _embedding_filter(ctx: AnalysisContext, ix: Interactions, fraction: float) -> list[sa.ColumnElement[bool]]:
    pre = hash_sample(ctx, ix, fraction)
    return [] if pre is None else [pre]


def _embedding_count(ctx: AnalysisContext, ix: Interactions, bounds: Window, fraction: float = 1.0) -> int:
    ecol = _embedding_col(ix, ctx.cfg)
    assert ecol is not None
    where = [ix.in_window(), valid_rows(ix), ecol.is_not(None), *_embedding_filter(ctx, ix, fraction)]
    return int(
        ctx.warehouse.scalar(sa.select(sa.func.count()).select_from(ix.table).where(*where), window_params(bounds))
    )


def _embedding_query(
    ix: Interactions, ecol: sa.ColumnElement[Any], extra: list[sa.ColumnElement[bool]], backend: str
) -> sa.Select[Any]:
    q = sa.select(ecol.label("e")).select_from(ix.table)
    q = q.where(ix.in_window(), valid_rows(ix), ecol.is_not(None), *extra)
    # Ordered, so the seeded subsample picks the same rows every time, on every warehouse:
    # request ids in byte order (PostgreSQL's default collation would sort them otherwise).
    order: list[Any] = [ix.req("timestamp")]
    if ix.has("request_id"):
        rid = sa.cast(ix.req("request_id"), sa.String)
        order.append(rid.collate("C") if backend == "postgresql" else rid)
    return q.order_by(*order)


def _embedding_column(ctx: AnalysisContext, ix: Interactions, bounds: Window, fraction: float = 1.0) -> pa.Array:
    """The embeddings of the valid rows in `bounds` (a hash pre-sample of `fraction` of
    them when < 1: big windows), in (timestamp, request_id) order, as read."""
    ecol = _embedding_col(ix, ctx.cfg)
    assert ecol is not None
    q = _embedding_query(ix, ecol, _embedding_filter(ctx, ix, fraction), ctx.warehouse.backend)
    return ctx.warehouse.fetch_arrow(q, window_params(bounds)).column(0).combine_chunks()


def embedding_segment(
    ctx: AnalysisContext, segment: Window, picks: np.ndarray, fraction: float = 1.0
) -> er.EmbeddingPart:
    """The rows at `picks` (positions in time order) of one segment's embeddings, or of
    their hash pre-sample (`fraction` < 1), with the counts of lengths and malformed rows
    over all of them: a segment function of aimon.tasks.orchestration.segments."""
    specs, _ = feature_specs(ctx.cfg, ctx.interactions)
    rows = er.parse_rows(_embedding_column(ctx, _drift_ix(ctx.interactions, specs, ctx.cfg), segment, fraction))
    return er.part(rows, picks[picks < len(rows)])


def embeddings_segmented(ctx: AnalysisContext, ix: Interactions, bounds: Window) -> tuple[int, er.EmbeddingSample]:
    """(rows with an embedding, the seeded sample) of `bounds`, read per segment: the
    warehouse counts each segment's embeddings, the rows `er.sample_positions` would pick
    from the whole window are drawn here, and each segment returns only its picks (and
    its counts, so the window's dimension and rejections are those of one read). The
    segments are consecutive in time, so the window's (timestamp, request_id) order is
    theirs one after another: the same rows as one read."""
    ecol, e = _embedding_col(ix, ctx.cfg), ctx.cfg.drift.embeddings
    assert ecol is not None and e is not None
    segments = segment_bounds(bounds, ctx.cfg.orchestration.segments)
    rows = _embedding_count(ctx, ix, bounds)
    # The same pre-sample as one read: its share is the whole window's, and the hash
    # keeps a row or not whatever segment it is in.
    fraction = presample(e, rows)
    counts = [_embedding_count(ctx, ix, s, fraction) for s in segments]
    picks = er.sample_positions(sum(counts), e.cap, e.seed)  # what one read of the window would pick
    starts = np.concatenate([[0], np.cumsum(counts)])
    calls = []
    for s, lo, hi in zip(segments, starts[:-1], starts[1:], strict=True):
        if hi > lo:  # every segment with embeddings is read, so its malformed rows are counted
            mine = picks[(picks >= lo) & (picks < hi)] - lo
            calls.append((functools.partial(embedding_segment, picks=mine, fraction=fraction), s))
    return rows, er.combine(run_calls(ctx, calls), e.dimension)


def _float_column(col: pa.ChunkedArray, name: str, ix: Interactions) -> np.ndarray:
    t = col.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t)):
        raise ContractError(
            f"drift feature {name!r} (table {ix.table.name!r}) is {t}, not a number: declare it type: categorical"
        )
    col = pc.drop_null(col)
    if pa.types.is_null(t) or len(col) == 0:
        return np.empty(0)
    x = np.asarray(pc.cast(col, pa.float64()).to_numpy(), dtype=np.float64)
    return x[np.isfinite(x)] if not np.isfinite(x).all() else x
