"""The drift reference ("fit", in NannyML's words): the reference's statistics.

The reference is the previous N windows or a fixed baseline period. Each of its
windows is summarised once (aimon.tasks.drift.reads) and stored in the ReferenceCache
(aimon.store.reference), keyed by the configuration that shaped the statistics; later
runs reuse a stored entry while its window's row count is unchanged, so seven days
of reference are not re-read every day. The windows' statistics are then merged into
one reference.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from aimon.config import Config
from aimon.stats import embedding as ed
from aimon.stats import stattests as st
from aimon.store.reference import ReferenceCache, WindowStats, config_hash, entry_key
from aimon.tasks.contract import valid_rows
from aimon.tasks.drift.features import FeatureSpec
from aimon.tasks.drift.reads import read_window
from aimon.tasks.orchestration.context import AnalysisContext
from aimon.warehouse import Interactions
from aimon.windows import Window, window_containing


def merge_stats(parts: list[WindowStats]) -> WindowStats:
    names_n = dict.fromkeys(k for p in parts for k in p.numeric)
    names_c = dict.fromkeys(k for p in parts for k in p.categorical)
    return WindowStats(
        sum(p.rows for p in parts),
        {k: st.merge_samples([p.numeric[k] for p in parts if k in p.numeric]) for k in names_n},
        {k: st.merge_counts([p.categorical[k] for p in parts if k in p.categorical]) for k in names_c},
        None,
        sum(p.embedding_rows for p in parts),
    )


def reference_windows(cfg: Config, window: Window) -> list[Window]:
    """The windows that make up the reference: the previous N windows, or the baseline
    period [start, end) in `windows.timezone` (end exclusive, like every window)."""
    ref = cfg.reference
    if ref.baseline is not None:
        tz = cfg.windows.tz
        start = dt.datetime.combine(ref.baseline.start, dt.time(), tzinfo=tz).astimezone(dt.UTC)
        end = dt.datetime.combine(ref.baseline.end, dt.time(), tzinfo=tz).astimezone(dt.UTC)
        return [Window(start.replace(tzinfo=None), end.replace(tzinfo=None), window.granularity, window.timezone)]
    out: list[Window] = []
    w = window
    for _ in range(ref.previous_windows or 7):
        w = window_containing(w.start - dt.timedelta(microseconds=1), w.granularity, w.timezone)
        out.append(w)
    return out[::-1]


def stats_hash(cfg: Config, specs: list[FeatureSpec]) -> str:
    e = cfg.drift.embeddings
    return config_hash(
        {
            "table": cfg.warehouse.interactions_table,
            "columns": cfg.warehouse.columns,
            "features": [(s.name, s.kind, s.builtin) for s in specs],
            "sketch_size": cfg.drift.sketch_size,
            # The dimension only when set, so the hashes (and stored entries) of configs
            # without one are unchanged.
            "embeddings": None if e is None else (e.column, e.cap, e.seed, *([e.dimension] if e.dimension else [])),
        }
    )


@dataclass(frozen=True)
class ReferenceLoad:
    stats: WindowStats
    embedding_parts: tuple[tuple[int, np.ndarray], ...]
    windows: int
    from_cache: int
    read: int
    # Each reference window's own statistics, by window start (pooled_reference).
    parts: tuple[tuple[dt.datetime, WindowStats], ...] = ()


def pooled_reference(
    load: ReferenceLoad, specs: list[FeatureSpec], drifted: dict[str, set[dt.datetime]], embedding_key: str
) -> tuple[ReferenceLoad, list[str], set[str]]:
    """The reference with, per feature, the windows where that feature drifted left out
    (`drifted`: feature -> window starts; `embedding_key` names the embeddings' entry),
    and a note per feature saying which. A feature that drifted in every reference
    window keeps them all: a change that lasted the whole reference span is the new
    normal, and the reference follows it. Also returns the features whose reference
    was thinned."""
    if not load.parts or (not any(drifted.get(s.name) for s in specs) and not drifted.get(embedding_key)):
        return load, [], set()
    notes: list[str] = []
    thinned: set[str] = set()

    def kept(name: str) -> list[tuple[dt.datetime, WindowStats]]:
        bad = drifted.get(name, set())
        good = [(start, p) for start, p in load.parts if start not in bad]
        left = len(load.parts) - len(good)
        if left and good:
            days = ", ".join(f"{start:%Y-%m-%d %H:%M}" for start, _ in load.parts if start in bad)
            notes.append(f"drift reference of {name}: {left} window(s) where it drifted left out ({days})")
            thinned.add(name)
            return good
        if left:
            notes.append(f"drift reference of {name}: it drifted in every reference window; all of them are used")
        return list(load.parts)

    numeric: dict[str, st.NumericSample] = {}
    categorical: dict[str, st.Counts] = {}
    for spec in specs:
        parts = [p for _, p in kept(spec.name)]
        if spec.kind == "numerical":
            samples = [p.numeric[spec.name] for p in parts if spec.name in p.numeric]
            if samples:
                numeric[spec.name] = st.merge_samples(samples)
        else:
            counts = [p.categorical[spec.name] for p in parts if spec.name in p.categorical]
            if counts:
                categorical[spec.name] = st.merge_counts(counts)
    emb_parts = load.embedding_parts
    if drifted.get(embedding_key):
        emb_parts = tuple((p.embedding_rows, p.embeddings) for _, p in kept(embedding_key) if p.embeddings is not None)
    stats = WindowStats(load.stats.rows, numeric, categorical, None, sum(n for n, _ in emb_parts))
    return ReferenceLoad(stats, emb_parts, load.windows, load.from_cache, load.read, load.parts), notes, thinned


def window_counts(ctx: AnalysisContext, ix: Interactions, windows: list[Window]) -> list[int]:
    """Each window's valid rows, in one scan of their span (a row store such as
    PostgreSQL reads a wide table's pages once, not once per window)."""
    if not windows:
        return []
    ts = ix.req("timestamp")
    params: dict[str, Any] = {"window_start": min(w.start for w in windows), "window_end": max(w.end for w in windows)}
    whens = []
    for i, w in enumerate(windows):
        params[f"ref{i}_start"], params[f"ref{i}_end"] = w.start, w.end
        lo, hi = sa.bindparam(f"ref{i}_start", type_=sa.DateTime), sa.bindparam(f"ref{i}_end", type_=sa.DateTime)
        whens.append((sa.and_(ts >= lo, ts < hi), i))
    bucket = sa.case(*whens, else_=None).label("w")
    q = (
        sa.select(bucket, sa.func.count().label("n"))
        .select_from(ix.table)
        .where(ix.in_window(), valid_rows(ix))
        .group_by(sa.literal_column("w"))
    )
    counts = {r["w"]: int(r["n"]) for r in ctx.warehouse.fetch(q, params)}
    return [counts.get(i, 0) for i in range(len(windows))]


def load_reference(
    ctx: AnalysisContext, ix: Interactions, specs: list[FeatureSpec], cache: ReferenceCache, cfg_hash: str
) -> ReferenceLoad:
    """Stored statistics for each reference window whose row count is unchanged;
    the others are read once and stored."""
    parts, emb_parts, starts = [], [], []
    cached = read = 0
    windows = reference_windows(ctx.cfg, ctx.window)
    for w, rows_now in zip(windows, window_counts(ctx, ix, windows), strict=True):
        key = entry_key(cfg_hash, w.start, w.end)
        hit = cache.get(key)
        if hit is not None and hit[0] == rows_now:
            stats = hit[1]
            cached += 1
        else:
            _, stats = read_window(ctx, ix, specs, w)
            cache.put(key, w.start, w.end, cfg_hash, stats)
            read += 1
        parts.append(stats)
        starts.append(w.start)
        if stats.embeddings is not None:
            emb_parts.append((stats.embedding_rows, stats.embeddings))
    return ReferenceLoad(
        merge_stats(parts), tuple(emb_parts), len(parts), cached, read, tuple(zip(starts, parts, strict=True))
    )


def reference_embeddings(
    parts: tuple[tuple[int, np.ndarray], ...], dimension: int, cap: int, seed: int
) -> tuple[np.ndarray, str | None]:
    """The reference's embedding sample at the current window's dimension, and a note
    naming the reference windows left out because theirs differs (a model change, or a
    window whose majority was malformed): a reference window never fails a later one."""
    same = [(n, m) for n, m in parts if m.shape[1] == dimension]
    other = sorted({int(m.shape[1]) for _, m in parts if m.shape[1] != dimension})
    note = None
    if other:
        note = (
            f"embedding drift: {len(parts) - len(same)} reference window(s) left out, their embeddings are "
            f"{', '.join(map(str, other))} long, the current window's {dimension} "
            "(set drift.embeddings.dimension to pin it)"
        )
    return ed.combine_reference(same, cap, seed), note
