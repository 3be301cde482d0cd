"""The metrics store: a long, narrow metrics table and a runs table.

`replace_window` is the idempotent write of a finished run: in one transaction it
deletes the window's figures and inserts the new ones, so a rerun replaces (never
duplicates) and a run that dies half-way leaves the previous figures untouched.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from aimon.config import Config
from aimon.errors import StoreError
from aimon.records import MetricRecord, labels_json
from aimon.store import runs as _claims
from aimon.warehouse import get_engine, redact
from aimon.windows import Window

RUN_STATUSES = ("running", "success", "degraded", "failed")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class StoredFigure:
    window_start: dt.datetime
    window_end: dt.datetime
    granularity: str
    metric: str
    labels: dict[str, str]
    value: float
    run_id: str


class Store:
    def __init__(self, cfg: Config):
        self.url = cfg.store_url
        self.engine = get_engine(self.url)
        md = sa.MetaData()
        # sa.Double, not sa.Float: DuckDB's FLOAT is 32-bit and would round costs.
        self.metrics = sa.Table(
            cfg.store.metrics_table,
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
        )
        self.runs = sa.Table(
            cfg.store.runs_table,
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
        )
        # One claim row per (window, granularity) while a run is live (aimon/claims.py).
        self.claims = _claims.claims_table(md, cfg.store.runs_table)
        self._md = md

    @property
    def where(self) -> str:
        return f"table {self.metrics.name} at {redact(self.url)}"

    def ensure(self) -> None:
        try:
            self._md.create_all(self.engine, checkfirst=True)
        except sa.exc.SQLAlchemyError as err:
            raise StoreError(f"cannot create the metrics store at {redact(self.url)}: {err}") from None

    # -- runs ---------------------------------------------------------------------

    def start_run(
        self,
        run_id: str,
        window: Window,
        flow_run_id: str | None = None,
        *,
        claim_ttl_seconds: float | None = None,
        redo: str = "all",
        now: dt.datetime | None = None,
    ) -> None:
        """Record a run as `running`. With `claim_ttl_seconds`, first claim the window
        (raises `WindowClaimed` while another run holds it), then apply `redo`: raise
        `WindowDone` (releasing the claim) when the window needs no run. The redo check
        runs under the claim, so a late duplicate cannot slip in after the first finished."""
        if claim_ttl_seconds is not None:
            mode = _claims.check_redo(redo)
            now = now or utcnow()
            _claims.acquire(
                self.engine, self.claims, self.runs, window, run_id, flow_run_id, ttl_seconds=claim_ttl_seconds, now=now
            )
            with self.engine.begin() as conn:
                latest = _claims.latest_finished(conn, self.runs, window)
                done = not _claims.needs_run(latest, mode)
                if done:
                    _claims.release(conn, self.claims, run_id)
            if done:
                raise _claims.WindowDone(f"{window} already has a finished run ({latest}); skipped (redo={mode})")
        with self.engine.begin() as conn:
            conn.execute(
                self.runs.insert().values(
                    run_id=run_id,
                    window_start=window.start,
                    window_end=window.end,
                    granularity=window.granularity,
                    status="running",
                    started_at=utcnow(),
                    flow_run_id=flow_run_id,
                )
            )

    def finish_run(
        self,
        run_id: str,
        status: str,
        *,
        duration_seconds: float,
        rows_accepted: int | None = None,
        rows_rejected: int | None = None,
        error: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        assert status in RUN_STATUSES
        with self.engine.begin() as conn:
            conn.execute(
                self.runs.update()
                .where(self.runs.c.run_id == run_id)
                .values(
                    status=status,
                    finished_at=utcnow(),
                    duration_seconds=duration_seconds,
                    rows_accepted=rows_accepted,
                    rows_rejected=rows_rejected,
                    error=error,
                    details=json.dumps(details or {}, sort_keys=True, default=str),
                )
            )
            _claims.release(conn, self.claims, run_id)  # with the status: no gap for a duplicate

    def runs_for(self, window: Window) -> list[dict[str, Any]]:
        q = (
            sa.select(self.runs)
            .where(self.runs.c.window_start == window.start, self.runs.c.granularity == window.granularity)
            .order_by(self.runs.c.started_at)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def window_states(self, windows: list[Window], now: dt.datetime | None = None) -> list[_claims.WindowState]:
        """Latest finished run and live claim per window (for backfill and catch-up plans)."""
        self.ensure()
        return _claims.window_states(self.engine, self.claims, self.runs, windows, now or utcnow())

    # -- figures ------------------------------------------------------------------

    def _rows(self, window: Window, records: Iterable[MetricRecord], run_id: str) -> list[dict[str, Any]]:
        now = utcnow()
        rows = {}
        for r in records:
            # The last figure for a key wins; analyzers never emit duplicates, but a
            # duplicate must not abort the whole write on the unique constraint.
            rows[(r.metric, r.labels_json)] = {
                "window_start": window.start,
                "window_end": window.end,
                "granularity": window.granularity,
                "metric": r.metric,
                "labels": r.labels_json,
                "value": r.value,
                "run_id": run_id,
                "computed_at": now,
            }
        return list(rows.values())

    def replace_window(self, window: Window, records: Sequence[MetricRecord], run_id: str) -> int:
        """Replace every figure of the window with `records`, atomically."""
        rows = self._rows(window, records, run_id)
        m = self.metrics
        with self.engine.begin() as conn:
            conn.execute(m.delete().where(m.c.window_start == window.start, m.c.granularity == window.granularity))
            if rows:
                conn.execute(m.insert(), rows)
        return len(rows)

    def upsert(self, window: Window, records: Sequence[MetricRecord], run_id: str) -> int:
        """Replace just these figures (used for a failed run's run-meta figures)."""
        rows = self._rows(window, records, run_id)
        m = self.metrics
        with self.engine.begin() as conn:
            for row in rows:
                conn.execute(
                    m.delete().where(
                        m.c.metric == row["metric"],
                        m.c.labels == row["labels"],
                        m.c.window_start == window.start,
                        m.c.granularity == window.granularity,
                    )
                )
            if rows:
                conn.execute(m.insert(), rows)
        return len(rows)

    def figures(
        self,
        *,
        granularity: str | None = None,
        metric: str | None = None,
        labels: dict[str, str] | None = None,
        start_from: dt.datetime | None = None,
        before: dt.datetime | None = None,
    ) -> list[StoredFigure]:
        m = self.metrics
        q = sa.select(m).order_by(m.c.window_start, m.c.metric, m.c.labels)
        if granularity is not None:
            q = q.where(m.c.granularity == granularity)
        if metric is not None:
            q = q.where(m.c.metric == metric)
        if labels is not None:
            q = q.where(m.c.labels == labels_json(labels))
        if start_from is not None:
            q = q.where(m.c.window_start >= start_from)
        if before is not None:
            q = q.where(m.c.window_start < before)
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(m.name):
                return []
            rows = conn.execute(q).mappings().all()
        return [
            StoredFigure(
                _as_datetime(r["window_start"]),
                _as_datetime(r["window_end"]),
                r["granularity"],
                r["metric"],
                json.loads(r["labels"]),
                float(r["value"]),
                r["run_id"],
            )
            for r in rows
        ]


def _as_datetime(v: Any) -> dt.datetime:
    # SQLite hands DateTime columns back as datetimes through SQLAlchemy's type, but
    # be lenient with stores created by other tools.
    return v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(str(v))
