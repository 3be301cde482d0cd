"""Every table aimon owns, declared in one place, on one MetaData.

The store database holds them all (the metrics table and its runs, run claims, alert
state, alert events, silences, the notification outbox, drift's reference statistics
and the A/B statistics). Their names come from the config (`store.*`, `alerts.*`), so the
declarations are built per config; each store class creates only the tables it uses,
when it first needs them. Columns use sa.Double, not sa.Float: DuckDB's FLOAT is 32-bit
and would round costs and sums of squares.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from aimon.config import Config
from aimon.engines import database_path, get_engine, redact
from aimon.errors import StoreError

REFERENCE_TABLE = "drift_reference_stats"


def utcnow() -> dt.datetime:
    """Naive UTC: what every DateTime column of the store holds."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def as_datetime(v: Any) -> dt.datetime:
    # SQLite hands DateTime columns back as datetimes through SQLAlchemy's type, but
    # be lenient with stores created by other tools.
    return v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(str(v))


def within(
    q: sa.Select[Any], column: sa.ColumnElement[Any], start: dt.datetime | None, end: dt.datetime | None
) -> sa.Select[Any]:
    """`q` kept to the rows whose `column` lies in [start, end); None leaves that side open."""
    if start is not None:
        q = q.where(column >= start)
    if end is not None:
        q = q.where(column < end)
    return q


def require_store(cfg: Config) -> None:
    """For what only reads the store (aimon.open, `aimon alerts list`, ...): an embedded
    store file that does not exist is an error naming it, never a new empty store that
    then answers "no alerts" (seen: the installed aimon run from another directory, the
    config's relative store path resolved there)."""
    path = database_path(cfg.store_url)
    if path is not None and not path.exists():
        raise StoreError(
            f"the metrics store {path} ({redact(cfg.store_url)}) does not exist yet: run a window first "
            "(`aimon run`, `aimon backfill` or `aimon demo`), or check store.url and the directory you are in"
        )


def store_engine(cfg: Config) -> sa.Engine:
    """The store's engine, shared by every store class (and by the warehouse when they
    are one embedded file: DuckDB opens a file in one mode per process)."""
    return get_engine(cfg.store_url, lock_timeout=cfg.store.lock_timeout_seconds)


@dataclass(frozen=True)
class Schema:
    metadata: sa.MetaData
    metrics: sa.Table
    runs: sa.Table
    claims: sa.Table
    alert_state: sa.Table
    alert_events: sa.Table
    silences: sa.Table
    outbox: sa.Table
    ab_stats: sa.Table


def schema(cfg: Config) -> Schema:
    """The tables of this config's store (drift's reference statistics have a fixed name
    and live in the same database: reference_table)."""
    s, a = cfg.store, cfg.alerts
    return _schema(
        s.metrics_table, s.runs_table, s.ab_stats_table, a.state_table, a.events_table, a.silences_table, a.outbox_table
    )


@functools.cache
def _schema(metrics: str, runs: str, ab_stats: str, state: str, events: str, silences: str, outbox: str) -> Schema:
    md = sa.MetaData()
    return Schema(
        metadata=md,
        metrics=sa.Table(
            metrics,
            md,
            sa.Column("window_start", sa.DateTime, nullable=False),
            sa.Column("window_end", sa.DateTime, nullable=False),
            sa.Column("granularity", sa.String(16), nullable=False),
            sa.Column("metric", sa.String(200), nullable=False),
            sa.Column("labels", sa.String(2000), nullable=False),
            sa.Column("value", sa.Double, nullable=False),
            sa.Column("run_id", sa.String(64), nullable=False),
            sa.Column("computed_at", sa.DateTime, nullable=False),
            sa.UniqueConstraint("metric", "labels", "window_start", "granularity"),
        ),
        runs=sa.Table(
            runs,
            md,
            sa.Column("run_id", sa.String(64), primary_key=True),
            sa.Column("window_start", sa.DateTime, nullable=False),
            sa.Column("window_end", sa.DateTime, nullable=False),
            sa.Column("granularity", sa.String(16), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("rows_accepted", sa.BigInteger),
            sa.Column("rows_rejected", sa.BigInteger),
            sa.Column("started_at", sa.DateTime, nullable=False),
            sa.Column("finished_at", sa.DateTime),
            sa.Column("duration_seconds", sa.Double),
            sa.Column("error", sa.Text),
            sa.Column("details", sa.Text),  # JSON: per-analyzer status and timings
            sa.Column("flow_run_id", sa.String(64)),
        ),
        # One claim row per (window, granularity) while a run is live (runs.py).
        claims=sa.Table(
            f"{runs}_claims",
            md,
            sa.Column("window_start", sa.DateTime, primary_key=True),
            sa.Column("granularity", sa.String(16), primary_key=True),
            sa.Column("run_id", sa.String(64), nullable=False),
            sa.Column("flow_run_id", sa.String(64)),
            sa.Column("claimed_at", sa.DateTime, nullable=False),
            sa.Column("expires_at", sa.DateTime, nullable=False),
        ),
        alert_state=sa.Table(
            state,
            md,
            sa.Column("alert_id", sa.String(40), primary_key=True),
            sa.Column("rule", sa.String(100), nullable=False),
            sa.Column("granularity", sa.String(16), nullable=False),
            sa.Column("labels", sa.String(2000), nullable=False),
            sa.Column("metric", sa.String(200), nullable=False),
            sa.Column("severity", sa.String(16), nullable=False),
            sa.Column("route", sa.String(100), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("value", sa.Double),
            sa.Column("bound", sa.Double),
            sa.Column("active_since", sa.DateTime),
            sa.Column("last_window_start", sa.DateTime, nullable=False),
            sa.Column("fired_window_start", sa.DateTime),
            sa.Column("resolved_window_start", sa.DateTime),
            sa.Column("notified_status", sa.String(16)),
            sa.Column("last_notified_window_start", sa.DateTime),
            sa.Column("run_id", sa.String(64), nullable=False),
            sa.Column("updated_at", sa.DateTime, nullable=False),
            # Added later (AlertStore.ensure adds them to an older table): consecutive
            # windows a firing alert has been back within bounds (resolve_after), and the
            # alert a folded one is folded into.
            sa.Column("ok_windows", sa.Integer),
            sa.Column("folded_into", sa.String(40)),
        ),
        alert_events=sa.Table(
            events,
            md,
            sa.Column("window_start", sa.DateTime, nullable=False),
            sa.Column("window_end", sa.DateTime, nullable=False),
            sa.Column("granularity", sa.String(16), nullable=False),
            sa.Column("rule", sa.String(100), nullable=False),
            sa.Column("labels", sa.String(2000), nullable=False),
            sa.Column("metric", sa.String(200), nullable=False),
            sa.Column("severity", sa.String(16), nullable=False),
            sa.Column("route", sa.String(100), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("value", sa.Double),
            sa.Column("bound", sa.Double),
            sa.Column("active_since", sa.DateTime),
            sa.Column("silenced_by", sa.String(200)),
            sa.Column("run_id", sa.String(64), nullable=False),
            sa.Column("evaluated_at", sa.DateTime, nullable=False),
            # Added later, as on the state table: the alert id a folded event is folded
            # into, and a note ("recovering: 1 of 2 windows back within bounds").
            sa.Column("folded_into", sa.String(40)),
            sa.Column("note", sa.Text),
            sa.UniqueConstraint("rule", "labels", "window_start", "granularity"),
        ),
        silences=sa.Table(
            silences,
            md,
            sa.Column("silence_id", sa.String(16), primary_key=True),
            sa.Column("matchers", sa.Text, nullable=False),  # JSON list of 'k=v' strings
            sa.Column("starts_at", sa.DateTime, nullable=False),
            sa.Column("ends_at", sa.DateTime, nullable=False),
            sa.Column("comment", sa.Text, nullable=False),
            sa.Column("created_by", sa.String(100), nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.Column("removed_at", sa.DateTime),
        ),
        outbox=sa.Table(
            outbox,
            md,
            sa.Column("outbox_id", sa.String(32), primary_key=True),
            sa.Column("dedup_key", sa.String(300), nullable=False, unique=True),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.Column("run_id", sa.String(64), nullable=False),
            sa.Column("route", sa.String(100), nullable=False),
            sa.Column("channel", sa.String(100), nullable=False),
            sa.Column("granularity", sa.String(16), nullable=False),
            sa.Column("window_start", sa.DateTime, nullable=False),
            sa.Column("window_end", sa.DateTime, nullable=False),
            sa.Column("payload", sa.Text, nullable=False),  # JSON: the grouped alerts
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("last_attempt_at", sa.DateTime),
            sa.Column("sent_at", sa.DateTime),
            sa.Column("last_error", sa.Text),
            sa.Column("expires_at", sa.DateTime),
            # A lease: the run sending this entry, and until when. Two runs delivering
            # at once (a backfill with --notify beside a live run) never both send it.
            sa.Column("claimed_by", sa.String(64)),
            sa.Column("claimed_until", sa.DateTime),
        ),
        ab_stats=sa.Table(
            ab_stats,
            md,
            sa.Column("experiment", sa.String(200), nullable=False),
            sa.Column("variant", sa.String(200), nullable=False),
            sa.Column("metric", sa.String(200), nullable=False),
            sa.Column("window_start", sa.DateTime, nullable=False),
            sa.Column("window_end", sa.DateTime, nullable=False),
            sa.Column("granularity", sa.String(16), nullable=False),
            sa.Column("n", sa.BigInteger, nullable=False),
            sa.Column("sum_x", sa.Double, nullable=False),
            sa.Column("sum_x2", sa.Double, nullable=False),
            sa.Column("sum_y", sa.Double, nullable=False),
            sa.Column("sum_y2", sa.Double, nullable=False),
            sa.Column("sum_xy", sa.Double, nullable=False),
            sa.Column("run_id", sa.String(64), nullable=False),
            sa.Column("computed_at", sa.DateTime, nullable=False),
            sa.UniqueConstraint("experiment", "variant", "metric", "window_start", "granularity"),
        ),
    )


@functools.cache
def reference_table(name: str = REFERENCE_TABLE) -> sa.Table:
    """Drift's reference statistics (reference.py): one entry per reference window."""
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("window_start", sa.DateTime, nullable=False),
        sa.Column("window_end", sa.DateTime, nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("computed_at", sa.DateTime, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
    )


@functools.cache
def deployments_table(name: str = "monitoring_deployments") -> sa.Table:
    """Recorded deployments (deployments.py): annotated or detected in the data."""
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("deployment_id", sa.String(16), primary_key=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("endpoint", sa.String(200)),  # None: every endpoint of the model
        sa.Column("deployed_at", sa.DateTime, nullable=False),  # naive UTC
        sa.Column("replaces", sa.String(200)),  # the previous model, the check's baseline
        sa.Column("note", sa.Text),
        sa.Column("source", sa.String(16), nullable=False),  # annotation | detected
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )


def create_tables(engine: sa.Engine, tables: Sequence[sa.Table], what: str) -> None:
    """Create those of `tables` that do not exist yet, or fail with a StoreError saying
    `cannot create {what}: ...`. Concurrent runs (a backfill) may race to create the same
    table: theirs is as good, once their transaction has committed."""
    md = tables[0].metadata
    for attempt in range(4):
        try:
            md.create_all(engine, tables=list(tables), checkfirst=True)
            return
        except sa.exc.SQLAlchemyError as err:
            try:
                time.sleep(0.05 * 2**attempt)
                with engine.connect() as conn:
                    inspector = sa.inspect(conn)
                    if all(inspector.has_table(t.name) for t in tables):
                        return
            except sa.exc.SQLAlchemyError:
                pass  # the database cannot be reached: no race to wait out
            else:
                if attempt < 3:
                    continue
            # The driver's message, not SQLAlchemy's (which repeats the SQL and a link).
            raise StoreError(f"cannot create {what}: {getattr(err, 'orig', None) or err}") from None
