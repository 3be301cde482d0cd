"""The handle `aimon.open` returns: `Monitor`, read-only over the store's tables.

Each method reads through the store classes (aimon.store) on a read-only engine. On an
embedded DuckDB store each call opens the file and closes it again, so a notebook left
open does not hold the lock a scheduled run needs (DuckDB: one writing process per file).
Time arguments take dates, datetimes or ISO strings; a date or a time without an offset
is local time in windows.timezone, as on the command line; ranges are windows starting
in [start, end).
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from aimon.api.views import ExperimentView, choice, drift_frame, utc
from aimon.catalogue import METRICS
from aimon.config import Config, load_config
from aimon.engines import get_engine
from aimon.errors import NotFound
from aimon.records import labels_json
from aimon.store.alerts import AlertEvent, AlertState, AlertStore
from aimon.store.metrics import RUN_STATUSES, Store
from aimon.store.schema import require_store, within
from aimon.windows import GRANULARITIES, Window, daily_window, window_containing, windows_between

Instant = dt.date | dt.datetime | str | None
FIGURE_COLUMNS = ("window_start", "window_end", "granularity", "metric", "value", "run_id")
ALERT_STATUSES = ("pending", "firing", "resolved")
DRIFT_METRICS = ("data_drift_score", "data_drift_p_value", "data_drift_p_value_adjusted", "data_drift_detected")


def open(config: str | os.PathLike[str] | Config | None = None) -> Monitor:  # aimon.open: shadows the builtin here only
    """A read-only handle on the store of `config`: a path, a loaded Config, or None for
    the usual lookup (AIMON_CONFIG, ./configs/monitoring.yaml, the packaged default)."""
    return Monitor(config if isinstance(config, Config) else load_config(config))


def _parse_iso(text: str) -> dt.date | dt.datetime:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date or datetime (e.g. 2026-11-20)") from None


class Monitor:
    """What `aimon.open` returns. Read-only: every method reads the store, none writes."""

    def __init__(self, cfg: Config):
        self.config = cfg
        self._tz = cfg.windows.timezone
        require_store(cfg)
        self._engine = get_engine(cfg.store_url, read_only=True, lock_timeout=cfg.store.lock_timeout_seconds)
        # The store classes, on a read-only engine instead of their read-write one.
        self._store, self._alerts = Store(cfg), AlertStore(cfg)
        for s in (self._store, self._alerts):
            s.engine = self._engine

    def __repr__(self) -> str:
        return f"<aimon.Monitor {self.config.source}: {self._store.where}>"

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Close an embedded DuckDB file after each call: DuckDB lets one process at a
        time write a file, and a scheduled run must not wait on an idle notebook."""
        try:
            yield
        finally:
            if self._engine.dialect.name == "duckdb":
                self._engine.dispose()

    def _has(self, table: sa.Table) -> bool:
        with self._engine.connect() as conn:
            return sa.inspect(conn).has_table(table.name)

    # -- time arguments ------------------------------------------------------------

    def _instant(self, value: Instant) -> dt.datetime | None:
        """Naive UTC. As on the command line, a date is the start of that local day and a
        time without an offset is local time (windows.timezone); the frames' own aware
        timestamps (UTC) can be passed back as they are."""
        if value is None:
            return None
        if isinstance(value, str):
            value = _parse_iso(value)
        if isinstance(value, dt.datetime):  # before date: a datetime is a date too
            aware = value if value.tzinfo is not None else value.replace(tzinfo=ZoneInfo(self._tz))
            return aware.astimezone(dt.UTC).replace(tzinfo=None)
        return daily_window(value, self._tz).start

    def _window(self, value: Window | Instant, granularity: str) -> Window:
        if isinstance(value, Window):
            return value
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime) and granularity == "daily":
            return daily_window(value, self._tz)
        if isinstance(value, str) and len(value) == 10 and granularity == "daily":
            return daily_window(dt.date.fromisoformat(value), self._tz)
        ts = self._instant(value)
        assert ts is not None
        return window_containing(ts, granularity, self._tz)

    # -- figures -------------------------------------------------------------------

    def metrics(self) -> pd.DataFrame:
        """Every metric in the store: how many figures, the first and last window, its meaning."""
        m = self._store.metrics
        q = sa.select(
            m.c.metric,
            sa.func.count().label("figures"),
            sa.func.min(m.c.window_start).label("first_window"),
            sa.func.max(m.c.window_start).label("last_window"),
        ).group_by(m.c.metric)
        with self._reading():
            rows = self._connect_rows(q) if self._has(m) else []
        frame = pd.DataFrame(rows, columns=["metric", "figures", "first_window", "last_window"])
        frame["help"] = [METRICS.get(n, "") for n in frame["metric"]]
        return utc(frame, "first_window", "last_window").sort_values("metric", ignore_index=True)

    def _connect_rows(self, q: sa.Select[Any]) -> list[Any]:
        with self._engine.connect() as conn:
            return list(conn.execute(q).all())

    def _check_metrics(self, names: list[str]) -> None:
        """A name the catalogue lists is valid (its frame may be empty); any other must be stored."""
        if all(n in METRICS for n in names):
            return
        stored = set(self.metrics()["metric"])
        unknown = [n for n in names if n not in stored and n not in METRICS]
        if unknown:
            named = []
            for n in unknown:
                near = difflib.get_close_matches(n, sorted(stored | set(METRICS)), 3)
                named.append(f"{n!r}" + (f" (did you mean {', '.join(near)}?)" if near else ""))
            raise NotFound(
                f"unknown metric {', '.join(named)}: not in the metric catalogue nor in {self._store.where}. "
                f"The store has {len(stored)} metrics: {', '.join(sorted(stored)) or 'none yet'}; "
                "m.metrics() lists them"
            )

    def figures(
        self,
        metric: str | Iterable[str] | None = None,
        start: Instant = None,
        end: Instant = None,
        granularity: str | None = None,
        *,
        labels: Mapping[str, Any] | None = None,
        **label_values: Any,
    ) -> pd.DataFrame:
        """Stored figures of windows starting in [start, end), as a tidy frame: window_start,
        window_end, granularity, metric, one column per label key, value, run_id. Labels
        filter by equality (`model="gpt-4o"`, `quantile=0.95`); a label called like a
        parameter goes in `labels={"metric": "latency"}`, and its column is `metric_label`."""
        names = [metric] if isinstance(metric, str) else None if metric is None else list(metric)
        choice(granularity, GRANULARITIES, "granularity")
        lo, hi = self._instant(start), self._instant(end)
        wanted = {k: str(v) for k, v in {**(labels or {}), **label_values}.items()}
        with self._reading():
            if names is not None:
                self._check_metrics(names)
            found = [
                f
                for name in (names or [None])  # type: ignore[list-item]  # None: every metric
                for f in self._store.figures(granularity=granularity, metric=name, start_from=lo, before=hi)
            ]
        keys = sorted({k for f in found for k in f.labels})
        missing = [k for k in wanted if k not in keys]
        if found and missing:
            raise NotFound(
                f"no label {', '.join(map(repr, missing))} on {', '.join(names or ['the figures'])}: "
                f"its labels are {', '.join(keys) or 'none'}"
            )
        found = [f for f in found if all(f.labels.get(k) == v for k, v in wanted.items())]
        found.sort(key=lambda f: (f.window_start, f.metric, labels_json(f.labels), f.granularity))
        columns = {k: f"{k}_label" if k in FIGURE_COLUMNS else k for k in keys}
        rows = [
            {
                "window_start": f.window_start,
                "window_end": f.window_end,
                "granularity": f.granularity,
                "metric": f.metric,
                **{columns[k]: f.labels.get(k) for k in keys},
                "value": f.value,
                "run_id": f.run_id,
            }
            for f in found
        ]
        order = [*FIGURE_COLUMNS[:4], *columns.values(), *FIGURE_COLUMNS[4:]]
        frame = pd.DataFrame(rows, columns=order)
        frame["value"] = frame["value"].astype(float)
        return utc(frame, "window_start", "window_end")

    # -- runs and alerts -----------------------------------------------------------

    def runs(
        self, start: Instant = None, end: Instant = None, status: str | None = None, granularity: str | None = None
    ) -> pd.DataFrame:
        """The runs table, for windows starting in [start, end); `details` parsed from its JSON."""
        choice(status, RUN_STATUSES, "run status")
        choice(granularity, GRANULARITIES, "granularity")
        r = self._store.runs
        q = within(
            sa.select(r).order_by(r.c.window_start, r.c.started_at),
            r.c.window_start,
            self._instant(start),
            self._instant(end),
        )
        if status is not None:
            q = q.where(r.c.status == status)
        if granularity is not None:
            q = q.where(r.c.granularity == granularity)
        with self._reading():
            rows = self._connect_rows(q) if self._has(r) else []
        frame = pd.DataFrame([dict(x._mapping) for x in rows], columns=[c.name for c in r.columns])
        frame["details"] = [json.loads(d) if d else {} for d in frame["details"]]
        return utc(frame, "window_start", "window_end", "started_at", "finished_at")

    def alerts(
        self,
        status: str | None = None,
        rule: str | None = None,
        start: Instant = None,
        end: Instant = None,
        granularity: str | None = None,
    ) -> pd.DataFrame:
        """Alert events (what each evaluated window found, sent or not) of windows starting in
        [start, end): one row per rule, labels and window; `labels` as a dict."""
        choice(status, ALERT_STATUSES, "alert status")
        choice(granularity, GRANULARITIES, "granularity")
        with self._reading():
            events = self._alerts.events_between(self._instant(start), self._instant(end), granularity)
        rules = [r.name for r in self.config.alerts.rules]
        if rule is not None and rule not in rules and all(e.rule != rule for e in events):
            raise NotFound(f"unknown alert rule {rule!r}: the config's rules are {', '.join(rules) or 'none'}")
        rows = [
            {**e.__dict__, "labels": json.loads(e.labels)}
            for e in events
            if (status is None or e.status == status) and (rule is None or e.rule == rule)
        ]
        columns = list(AlertEvent.__dataclass_fields__)
        return utc(pd.DataFrame(rows, columns=columns), "window_start", "window_end", "active_since")

    def alert_states(self) -> pd.DataFrame:
        """The current state of every alert (pending, firing, resolved, inactive)."""
        with self._reading():
            states = self._alerts.states()
        rows = [{**s.__dict__, "labels": s.labels_dict} for s in states.values()]
        frame = pd.DataFrame(rows, columns=list(AlertState.__dataclass_fields__))
        frame = frame.sort_values(["rule", "alert_id"], ignore_index=True)
        times = [c for c in frame.columns if c.endswith(("_since", "_start"))]
        return utc(frame, *times)

    # -- A/B experiments and drift ---------------------------------------------------

    def experiment(self, name: str, granularity: str | None = None) -> ExperimentView:
        """The A/B result as of the experiment's latest stored window: the analyzer's
        ExperimentResult, rebuilt from the stored per-window statistics through its own
        pure functions (tasks/abtest/looks.py) with the current config, so it carries
        everything the run reported (means, lift and CI, p-values, decisions, SRM)."""
        # Lazy: the A/B statistics import scipy (~1 s) and aimon.tasks.abtest imports Prefect
        # (~4 s), which every other method does without.
        from aimon.store.abstats import ABStatsStore  # noqa: PLC0415  lazy: scipy, ~1 s
        from aimon.tasks.abtest.looks import analyze_looks, srm_only  # noqa: PLC0415  lazy: Prefect, ~4 s

        configured = {e.name: e for e in self.config.experiments}
        exp = configured.get(name)
        if exp is None:
            raise NotFound(
                f"unknown experiment {name!r}: the config ({self.config.source}) lists "
                f"{', '.join(configured) or 'no experiments'}"
            )
        choice(granularity, GRANULARITIES, "granularity")
        ab = ABStatsStore(self.config)
        ab.engine = self._engine
        with self._reading():
            status = self._store.figures(granularity=granularity, metric="ab_status", labels={"experiment": name})
            if not status or not self._has(ab.table):
                raise NotFound(f"experiment {name!r} has no stored results yet: run a window in which it has rows")
            last = status[-1]
            window = Window(last.window_start, last.window_end, last.granularity, self._tz)  # type: ignore[arg-type]
            g = window.granularity
            first = ab.first_window(name, g)
            start_date = exp.start or window_containing(first or window.start, "daily", self._tz).local_start.date()
            last_date = window.local_start.date()
            last_date = min(last_date, exp.end) if exp.end else last_date
            windows = [w for w in windows_between(start_date, last_date, g, self._tz) if w.start <= window.start]
            stored = ab.load(name, g, windows[0].start, windows[-1].start) if windows else {}
        # The metrics the run could analyse are the ones it stored for its window.
        analysed = {r.metric for r in stored.get(windows[-1].start, [])} if windows else set()
        used = tuple(m for m in exp.metrics if m.name in analysed)
        looks = [
            {(r.variant, r.metric): r.moments for r in stored.get(w.start, []) if r.metric in analysed} for w in windows
        ]
        if used:
            usable = exp if len(used) == len(exp.metrics) else exp.model_copy(update={"metrics": used})
            res = analyze_looks(usable, looks)
        else:
            res = srm_only(exp, looks)
        res = replace(res, first_window=windows[0].start if windows else None)
        return ExperimentView(window, res)

    def drift(self, window: Window | Instant = None, granularity: str = "daily") -> pd.DataFrame:
        """Per feature, the drift verdict of one window (a Window, a date, a datetime in it,
        or None: the latest window with drift figures): the score and its method, the
        effect size, the test's p-value (and after Benjamini-Hochberg), detected."""
        choice(granularity, GRANULARITIES, "granularity")
        with self._reading():
            if window is None:
                latest = self._store.figures(granularity=granularity, metric="data_drift_detected")
                if not latest:
                    raise NotFound(f"no {granularity} window has drift figures in {self._store.where}")
                w = Window(latest[-1].window_start, latest[-1].window_end, granularity, self._tz)  # type: ignore[arg-type]
            else:
                w = self._window(window, granularity)
            found = [
                f
                for metric in DRIFT_METRICS
                for f in self._store.figures(
                    granularity=w.granularity,
                    metric=metric,
                    start_from=w.start,
                    before=w.start + dt.timedelta(microseconds=1),
                )
            ]
            if not found:
                recent = self._store.figures(granularity=w.granularity, metric="data_drift_detected")
                starts = sorted({f.window_start for f in recent})[-5:]
                raise NotFound(
                    f"no drift figures for {w}: the latest {w.granularity} windows with drift figures start at "
                    + (", ".join(f"{s:%Y-%m-%d %H:%M}" for s in starts) or "none (no run has computed drift)")
                )
        return drift_frame(w, found)
