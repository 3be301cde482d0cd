"""What the report is built from, read once: the metrics table, the runs table and
the alert tables of the store (never the warehouse).

One query per table over the chosen granularity and date range. Figures are kept
twice over the same values: by series (metric, labels) for the time-series charts and
by window for the window pages; label JSON is parsed once per distinct string.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from aimon.config import Config
from aimon.engines import database_path, redact
from aimon.store.alerts import AlertEvent, AlertState, AlertStore, OutboxEntry, Silence
from aimon.store.schema import as_datetime, schema, store_engine
from aimon.windows import GRANULARITIES, Window, daily_window

Points = dict[dt.datetime, float]  # window start (naive UTC) -> value


@dataclass(frozen=True)
class RunRow:
    """The latest run of a window, and how many runs the window has had."""

    window: Window
    run_id: str
    status: str
    rows_accepted: int | None
    rows_rejected: int | None
    duration_seconds: float | None
    error: str | None
    details: dict[str, Any]
    started_at: dt.datetime
    runs: int


@dataclass
class ReportData:
    cfg: Config
    granularity: str
    where: str  # the store, for captions (password masked)
    problem: str | None = None  # why there is nothing to show at all (no store yet)
    windows: list[Window] = field(default_factory=list)  # every window with a run or figures, oldest first
    runs: dict[dt.datetime, RunRow] = field(default_factory=dict)
    # metric -> labels JSON -> points
    figures: dict[str, dict[str, Points]] = field(default_factory=dict)
    by_window: dict[dt.datetime, list[tuple[str, str, float]]] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # labels JSON -> parsed
    events: list[AlertEvent] = field(default_factory=list)
    folded_into: dict[str, AlertState] = field(default_factory=dict)  # alert id -> the alert folded ones went into
    outbox: list[OutboxEntry] = field(default_factory=list)
    silences: list[Silence] = field(default_factory=list)
    range_text: str = "all stored windows"
    xlabels: dict[dt.datetime, str] = field(default_factory=dict)  # window start -> local "YYYY-MM-DD HH:MM"
    previous: dict[dt.datetime, list[dt.datetime]] = field(default_factory=dict)  # calendar windows before a start
    phases: dict[dt.datetime, int] = field(default_factory=dict)  # window start -> local weekday (daily) or hour
    # (rule, labels JSON) -> window start -> (centre, bound): aimon.report.bands.baseline, once per build
    bands: dict[tuple[str, str], dict[dt.datetime, tuple[float, float]]] = field(default_factory=dict)
    # the last build's bands and their inputs (aimon.report.memo), and this build's
    memo_in: dict[str, Any] = field(default_factory=dict)
    memo_out: dict[str, Any] = field(default_factory=dict)

    def x(self, start: dt.datetime) -> str:
        label = self.xlabels.get(start)
        if label is None:
            label = self.xlabels[start] = (
                f"{Window(start, start, 'daily', self.cfg.windows.timezone).local_start:%Y-%m-%d %H:%M}"
            )
        return label

    @property
    def empty(self) -> bool:
        return not self.windows

    def series(
        self, metric: str, keys: tuple[str, ...] | None = None, /, **want: str
    ) -> list[tuple[dict[str, str], Points]]:
        """Every stored series of `metric` whose labels hold `want` (a value starting with
        `!` must differ) and, with `keys`, have exactly those label names."""
        out = []
        for lj, points in self.figures.get(metric, {}).items():
            labels = self.labels[lj]
            if keys is not None and set(labels) != set(keys):
                continue
            if all(_wanted(labels.get(k), v) for k, v in want.items()):
                out.append((labels, points))
        return sorted(out, key=lambda s: sorted(s[0].items()))

    def one(self, metric: str, /, **labels: str) -> Points:
        """The series with exactly these labels (empty when absent). Positional-only
        `metric`: an A/B figure has a `metric` label too."""
        return self.figures.get(metric, {}).get(json.dumps(labels, sort_keys=True, separators=(",", ":")), {})

    def window_of(self, start: dt.datetime) -> Window | None:
        for w in self.windows:
            if w.start == start:
                return w
        return None


def _wanted(value: str | None, want: str) -> bool:
    if want.startswith("!"):
        return value != want[1:]
    return value == want


def choose_granularity(cfg: Config, granularity: str | None) -> str:
    """The asked one, else daily when the store has daily runs, else the first that it has."""
    if granularity is not None:
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity {granularity!r}: use one of {', '.join(GRANULARITIES)}")
        return granularity
    path = database_path(cfg.store_url)
    if path is not None and not path.exists():
        return "daily"
    runs = schema(cfg).runs
    engine = store_engine(cfg)
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(runs.name):
            return "daily"
        have = {r[0] for r in conn.execute(sa.select(runs.c.granularity).distinct())}
    return next((g for g in GRANULARITIES if g in have), "daily")


def load(
    cfg: Config,
    granularity: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    charted: tuple[str, ...] | None = None,
    every_figure_of: tuple[dt.datetime, ...] = (),
) -> ReportData:
    """Everything the report shows for windows starting from local date `start` up to and
    including local date `end` (either open). With `charted` (report.after_run), only
    those metrics are read, plus every figure of the windows starting at
    `every_figure_of` (the pages being rebuilt): a third of the rows."""
    tz = cfg.windows.timezone
    data = ReportData(cfg, granularity, f"the store at {redact(cfg.store_url)}")
    lo = daily_window(start, tz).start if start else None
    hi = daily_window(end, tz).end if end else None
    if start or end:
        data.range_text = f"windows from {start or 'the first'} to {end or 'the last'}"
    path = database_path(cfg.store_url)
    if path is not None and not path.exists():
        # Never create the store: a report of nothing says where it looked.
        data.problem = f"there is no store yet at {path}: run `aimon demo` or `aimon run` first"
        return data
    tables = schema(cfg)
    engine = store_engine(cfg)
    m = tables.metrics
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        has = {t.name for t in (m, tables.runs) if inspector.has_table(t.name)}
        series: list[Series] = []
        page_series: list[Series] | None = None
        starts: dict[dt.datetime, dt.datetime] = {}
        if m.name in has:
            where = _where(m, granularity, lo, hi)
            series = _series(conn, m, (*where, m.c.metric.in_(charted)) if charted is not None else where)
            if charted is not None:  # the rebuilt pages list every figure of their windows
                page_series = (
                    _series(conn, m, (*where, m.c.window_start.in_(every_figure_of))) if every_figure_of else []
                )
            spans = sa.select(m.c.window_start, m.c.window_end).where(*where).distinct()
            starts = {as_datetime(s): as_datetime(e) for s, e in conn.execute(spans)}
        runs = _run_rows(conn, tables.runs, granularity, lo, hi) if tables.runs.name in has else []
    data.figures = _fill_figures(data, series)
    data.by_window = _by_window(data, series if page_series is None else page_series)
    for r in runs:
        starts.setdefault(r["window_start"], r["window_end"])
    data.windows = [Window(s, starts[s], granularity, tz) for s in sorted(starts)]  # type: ignore[arg-type]
    by_start = {w.start: w for w in data.windows}
    counts: dict[dt.datetime, int] = defaultdict(int)
    for r in runs:  # ordered by started_at: the latest run of a window wins
        counts[r["window_start"]] += 1
        data.runs[r["window_start"]] = RunRow(
            by_start[r["window_start"]],
            r["run_id"],
            r["status"],
            r["rows_accepted"],
            r["rows_rejected"],
            r["duration_seconds"],
            r["error"],
            json.loads(r["details"]) if r["details"] else {},
            as_datetime(r["started_at"]),
            counts[r["window_start"]],
        )
    astore = AlertStore(cfg)
    data.events = [e for e in astore.events_between(lo, hi, granularity)]
    parents = {e.folded_into for e in data.events if e.folded_into}
    if parents:  # what a folded event names is an alert id: the alerts page shows rule{labels}
        data.folded_into = astore.states(sorted(parents))
    data.outbox = [
        o
        for o in astore.outbox_entries()
        if o.granularity == granularity and (lo is None or o.window_start >= lo) and (hi is None or o.window_start < hi)
    ]
    data.silences = astore.silences_all()
    return data


def _where(m: sa.Table, granularity: str, lo: dt.datetime | None, hi: dt.datetime | None) -> tuple[Any, ...]:
    where: list[Any] = [m.c.granularity == granularity]
    if lo is not None:
        where.append(m.c.window_start >= lo)
    if hi is not None:
        where.append(m.c.window_start < hi)
    return tuple(where)


# A stored series: metric, labels JSON, its window starts (ascending) and their values.
Series = tuple[str, str, list[dt.datetime], list[float]]


def _series(conn: sa.Connection, m: sa.Table, where: tuple[Any, ...]) -> list[Series]:
    """Every series with figures matching `where`, ordered by metric and labels."""
    if conn.dialect.name == "duckdb":
        return _series_duckdb(conn, m, where)
    q = sa.select(m.c.metric, m.c.labels, m.c.window_start, m.c.value).where(*where)
    rows = conn.execute(q.order_by(m.c.metric, m.c.labels, m.c.window_start)).all()  # fetchall: 2x faster
    out: list[Series] = []
    parsed: dict[Any, dt.datetime] = {}  # SQLite hands timestamps back as strings: each parsed once
    for (metric, lj), group in itertools.groupby(rows, key=lambda r: (r[0], r[1])):
        points = [(r[2], r[3]) for r in group]
        for s, _ in points:
            if s not in parsed:
                parsed[s] = as_datetime(s)
        out.append((metric, lj, [parsed[s] for s, _ in points], [float(v) for _, v in points]))
    return out


def _series_duckdb(conn: sa.Connection, m: sa.Table, where: tuple[Any, ...]) -> list[Series]:
    """The same, columnar: a year of daily figures is ~170k charted rows, read after
    every run by report.after_run. Row by row (a Python tuple, two strings and two
    datetimes per figure) that is most of the build; here the strings come back once
    per series, and the rows as three numpy columns (series number, window start in
    microseconds, value)."""
    names = _raw(conn, sa.select(m.c.metric, m.c.labels).where(*where).distinct().order_by(m.c.metric, m.c.labels))
    names = names.fetchall()
    if not names:
        return []
    # The series' numbers as `names` has them (the same order), joined to the rows; the
    # rows are sorted here: numpy sorts three number columns faster than DuckDB a join.
    f = sa.select(m.c.metric, m.c.labels, m.c.window_start, m.c.value).where(*where).cte("f")
    keys = sa.select(f.c.metric, f.c.labels).distinct().subquery("k")
    s = sa.select(
        keys.c.metric,
        keys.c.labels,
        (sa.func.row_number().over(order_by=(keys.c.metric, keys.c.labels)) - 1).label("sid"),
    ).cte("s")
    q = sa.select(s.c.sid, sa.func.epoch_us(f.c.window_start).label("us"), f.c.value).select_from(
        f.join(s, sa.and_(f.c.metric == s.c.metric, f.c.labels == s.c.labels))
    )
    cols = _raw(conn, q).fetchnumpy()
    order = np.lexsort((cols["us"], cols["sid"]))
    sid, micros, values = (np.asarray(cols[k])[order] for k in ("sid", "us", "value"))
    distinct, index = np.unique(micros, return_inverse=True)
    epoch = dt.datetime(1970, 1, 1)
    as_dt = np.array([epoch + dt.timedelta(microseconds=int(u)) for u in distinct.tolist()], dtype=object)
    starts, vals = as_dt[index].tolist(), values.tolist()
    cuts = [0, *(np.flatnonzero(np.diff(sid)) + 1).tolist(), len(vals)]
    return [(names[int(sid[a])][0], names[int(sid[a])][1], starts[a:b], vals[a:b]) for a, b in itertools.pairwise(cuts)]


def _raw(conn: sa.Connection, q: sa.Select[Any]) -> Any:
    """`q` run on DuckDB's own cursor (for its numpy results, and its rows without
    SQLAlchemy's per-row processing)."""
    compiled = q.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    positional = [compiled.params[k] for k in (compiled.positiontup or [])]
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw.execute(str(compiled), positional)


def _run_rows(
    conn: sa.Connection, runs: sa.Table, granularity: str, lo: dt.datetime | None, hi: dt.datetime | None
) -> list[dict[str, Any]]:
    q = sa.select(runs).where(runs.c.granularity == granularity)
    if lo is not None:
        q = q.where(runs.c.window_start >= lo)
    if hi is not None:
        q = q.where(runs.c.window_start < hi)
    out = []
    for r in conn.execute(q.order_by(runs.c.started_at)).mappings():
        d = dict(r)
        d["window_start"], d["window_end"] = as_datetime(d["window_start"]), as_datetime(d["window_end"])
        out.append(d)
    return out


def _fill_figures(data: ReportData, series: list[Series]) -> dict[str, dict[str, Points]]:
    figures: dict[str, dict[str, Points]] = {}
    for metric, lj, starts, values in series:
        if lj not in data.labels:
            data.labels[lj] = json.loads(lj)
        figures.setdefault(metric, {})[lj] = dict(zip(starts, values, strict=True))
    return figures


def _by_window(data: ReportData, series: list[Series]) -> dict[dt.datetime, list[tuple[str, str, float]]]:
    """Window start -> its figures (metric, labels JSON, value), ordered by metric and labels."""
    by_window: dict[dt.datetime, list[tuple[str, str, float]]] = defaultdict(list)
    for metric, lj, starts, values in series:
        if lj not in data.labels:
            data.labels[lj] = json.loads(lj)
        for s, v in zip(starts, values, strict=True):
            by_window[s].append((metric, lj, v))
    return dict(by_window)
