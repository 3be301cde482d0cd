"""The latest window's feature distributions overlaid on its reference's, from the
statistics drift stores per window (aimon.store.reference): the window's own entry
(kept because it becomes tomorrow's reference) and its reference windows' entries
with the same configuration hash, merged as drift merges them. Read only: the table is
never created here."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import sqlalchemy as sa

from aimon.engines import get_engine
from aimon.report.charts import Chart, Trace, esc, slug
from aimon.report.data import ReportData
from aimon.stats import stattests as st
from aimon.store.reference import WindowStats
from aimon.store.schema import as_datetime, reference_table
from aimon.windows import Window, window_containing

BINS = 30
TOP_CATEGORIES = 20


def reference_bounds(data: ReportData, window: Window) -> list[tuple[dt.datetime, dt.datetime]]:
    """The reference's windows, as drift picks them (aimon.tasks.drift.fit.reference_windows):
    the fixed baseline period, or the previous N windows."""
    ref = data.cfg.reference
    if ref.baseline is not None:
        tz = data.cfg.windows.tz
        lo = dt.datetime.combine(ref.baseline.start, dt.time(), tzinfo=tz).astimezone(dt.UTC).replace(tzinfo=None)
        hi = dt.datetime.combine(ref.baseline.end, dt.time(), tzinfo=tz).astimezone(dt.UTC).replace(tzinfo=None)
        return [(lo, hi)]
    out, w = [], window
    for _ in range(ref.previous_windows or 7):
        w = window_containing(w.start - dt.timedelta(microseconds=1), w.granularity, w.timezone)
        out.append((w.start, w.end))
    return out


def _entries(data: ReportData, window: Window) -> tuple[WindowStats | None, list[WindowStats]]:
    table = reference_table()
    engine = get_engine(data.cfg.store_url, lock_timeout=data.cfg.store.lock_timeout_seconds)
    bounds = [(window.start, window.end), *reference_bounds(data, window)]
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(table.name):
            return None, []
        starts = [b[0] for b in bounds]
        q = (
            sa.select(
                table.c.window_start, table.c.window_end, table.c.config_hash, table.c.computed_at, table.c.payload
            )
            .where(table.c.window_start.in_(starts))
            .order_by(table.c.computed_at)
        )
        rows = conn.execute(q).all()
    latest: dict[tuple[dt.datetime, dt.datetime, str], bytes] = {}
    current_hash = None
    for s, e, h, _, payload in rows:
        key = (as_datetime(s), as_datetime(e), h)
        latest[key] = bytes(payload)
        if key[:2] == (window.start, window.end):
            current_hash = h  # ordered by computed_at: the newest entry of the window wins
    if current_hash is None:
        return None, []
    current = WindowStats.from_bytes(latest[(window.start, window.end, current_hash)])
    refs = [
        WindowStats.from_bytes(latest[(s, e, current_hash)]) for s, e in bounds[1:] if (s, e, current_hash) in latest
    ]
    return current, refs


def _numeric_chart(name: str, ref: st.NumericSample, cur: st.NumericSample) -> Chart:
    lo, hi = np.quantile(ref.values, [0.005, 0.995]) if len(ref.values) else (0.0, 1.0)
    lo, hi = float(min(lo, np.quantile(cur.values, 0.005))), float(max(hi, np.quantile(cur.values, 0.995)))
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, BINS + 1)
    c = Chart(
        f"chart-dist-{slug(name)}",
        f"{name}: distribution, current window vs reference",
        "share of rows",
        x_type="linear",
        x_name="bin centre",
        barmode="overlay",
    )
    centres = [f"{(a + b) / 2:.6g}" for a, b in itertools.pairwise(edges)]
    for label, sample in (("reference", ref), ("current window", cur)):
        counts, _ = np.histogram(np.clip(sample.values, lo, hi), bins=edges, weights=sample.weight_array())
        total = counts.sum() or 1.0
        c.traces.append(Trace(f"{label} ({sample.n:,} rows)", centres, [float(v) / total for v in counts], "bar"))
    c.caption = "Values outside the reference's 0.5-99.5% range are counted in the end bins. From the stored sketches."
    return c


def _categorical_chart(name: str, ref: st.Counts, cur: st.Counts) -> Chart:
    shares_ref = dict(zip(ref.keys, (ref.counts / max(ref.n, 1)).tolist(), strict=True))
    shares_cur = dict(zip(cur.keys, (cur.counts / max(cur.n, 1)).tolist(), strict=True))
    top = sorted(set(shares_ref) | set(shares_cur), key=lambda k: -max(shares_ref.get(k, 0), shares_cur.get(k, 0)))
    top = top[:TOP_CATEGORIES]
    c = Chart(
        f"chart-dist-{slug(name)}",
        f"{name}: category shares, current window vs reference",
        "share of rows",
        x_type="category",
        x_name="category",
        barmode="group",
    )
    c.traces = [
        Trace(f"reference ({ref.n:,} rows)", top, [shares_ref.get(k, 0.0) for k in top], "bar"),
        Trace(f"current window ({cur.n:,} rows)", top, [shares_cur.get(k, 0.0) for k in top], "bar"),
    ]
    return c


def distribution_charts(data: ReportData, window: Window) -> tuple[list[Chart], str]:
    """The charts, and a caption saying what they were built from (or why there are none)."""
    current, refs = _entries(data, window)
    if current is None:
        return [], esc(
            f"No distributions: the drift statistics of {window.label} are not in the store (drift did not run for "
            "this window, or it ran under another configuration since)."
        )
    if not refs:
        return [], esc(f"No distributions: none of the reference windows of {window.label} has stored statistics.")
    numeric = {k: st.merge_samples([r.numeric[k] for r in refs if k in r.numeric]) for k in current.numeric}
    cats = {k: st.merge_counts([r.categorical[k] for r in refs if k in r.categorical]) for k in current.categorical}
    charts = [
        _numeric_chart(k, numeric[k], current.numeric[k])
        for k in sorted(numeric)
        if numeric[k].n and current.numeric[k].n
    ]
    charts += [
        _categorical_chart(k, cats[k], current.categorical[k])
        for k in sorted(cats)
        if cats[k].n and current.categorical[k].n
    ]
    note = esc(
        f"{window.label} ({current.rows:,} rows) against {len(refs)} reference window(s) "
        f"({sum(r.rows for r in refs):,} rows), from the statistics drift stored for them."
    )
    return charts, note
