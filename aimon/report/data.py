"""What the report is built from, read once: the metrics table, the runs table and
the alert tables of the store (never the warehouse).

One query per table over the chosen granularity and date range. Figures are kept
twice over the same values: by series (metric, labels) for the time-series charts and
by window for the window pages; label JSON is parsed once per distinct string.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from aimon.config import Config
from aimon.engines import database_path, redact
from aimon.store.alerts import AlertEvent, AlertStore, OutboxEntry, Silence
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
    outbox: list[OutboxEntry] = field(default_factory=list)
    silences: list[Silence] = field(default_factory=list)
    range_text: str = "all stored windows"
    xlabels: dict[dt.datetime, str] = field(default_factory=dict)  # window start -> local "YYYY-MM-DD HH:MM"
    previous: dict[dt.datetime, list[dt.datetime]] = field(default_factory=dict)  # calendar windows before a start

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
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        has = {t.name for t in (tables.metrics, tables.runs) if inspector.has_table(t.name)}
        rows = (
            _figure_rows(conn, tables.metrics, granularity, lo, hi, charted, every_figure_of)
            if tables.metrics.name in has
            else []
        )
        runs = _run_rows(conn, tables.runs, granularity, lo, hi) if tables.runs.name in has else []
    _fill_figures(data, rows)
    starts: dict[dt.datetime, dt.datetime] = {s: e for s, e, *_ in rows}
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
    data.outbox = [
        o
        for o in astore.outbox_entries()
        if o.granularity == granularity and (lo is None or o.window_start >= lo) and (hi is None or o.window_start < hi)
    ]
    data.silences = astore.silences_all()
    return data


def _figure_rows(
    conn: sa.Connection,
    m: sa.Table,
    granularity: str,
    lo: dt.datetime | None,
    hi: dt.datetime | None,
    charted: tuple[str, ...] | None = None,
    every_figure_of: tuple[dt.datetime, ...] = (),
) -> list[tuple[dt.datetime, dt.datetime, str, str, float]]:
    q = sa.select(m.c.window_start, m.c.window_end, m.c.metric, m.c.labels, m.c.value).where(
        m.c.granularity == granularity
    )
    if charted is not None:
        wanted = m.c.metric.in_(charted)
        q = q.where(sa.or_(wanted, m.c.window_start.in_(every_figure_of)) if every_figure_of else wanted)
    if lo is not None:
        q = q.where(m.c.window_start >= lo)
    if hi is not None:
        q = q.where(m.c.window_start < hi)
    q = q.order_by(m.c.window_start, m.c.metric, m.c.labels)
    rows = _all(conn, q)
    if not rows or isinstance(rows[0][0], dt.datetime):  # DuckDB, PostgreSQL: datetimes already
        return [(s, e, metric, labels, float(value)) for s, e, metric, labels, value in rows]
    out = []
    cache: dict[Any, dt.datetime] = {}
    for s, e, metric, labels, value in rows:
        # SQLite hands timestamps back as strings: parse each distinct one once.
        if s not in cache:
            cache[s] = as_datetime(s)
        if e not in cache:
            cache[e] = as_datetime(e)
        out.append((cache[s], cache[e], metric, labels, float(value)))
    return out


def _all(conn: sa.Connection, q: sa.Select[Any]) -> list[Any]:
    """Every row of `q`. On DuckDB through its own cursor: a year of daily figures is
    ~100k rows, which SQLAlchemy's result processing reads 3x slower (report.after_run
    reads them after every run)."""
    if conn.dialect.name != "duckdb":
        return list(conn.execute(q).all())  # fetchall: 2x faster than iterating
    compiled = q.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    positional = [compiled.params[k] for k in (compiled.positiontup or [])]
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw.execute(str(compiled), positional).fetchall()  # type: ignore[no-any-return]


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


def _fill_figures(data: ReportData, rows: list[tuple[dt.datetime, dt.datetime, str, str, float]]) -> None:
    figures: dict[str, dict[str, Points]] = defaultdict(lambda: defaultdict(dict))
    by_window: dict[dt.datetime, list[tuple[str, str, float]]] = defaultdict(list)
    for s, _, metric, lj, value in rows:
        if lj not in data.labels:
            data.labels[lj] = json.loads(lj)
        figures[metric][lj][s] = value
        by_window[s].append((metric, lj, value))
    data.figures = {m: dict(v) for m, v in figures.items()}
    data.by_window = dict(by_window)
