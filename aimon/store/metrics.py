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
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from aimon.config import Config
from aimon.engines import database_path, missing_database, redact, same_database
from aimon.errors import FileLocked, StoreError, WindowClaimed, WindowDone
from aimon.records import MetricRecord, labels_json
from aimon.store import runs as _claims
from aimon.store.lockfile import claim_of, describe, publish_claims, read_holder
from aimon.store.schema import as_datetime, create_tables, schema, store_engine, utcnow
from aimon.windows import Window

RUN_STATUSES = ("running", "success", "degraded", "failed", "provisional")  # provisional: never finished


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
        self.engine = store_engine(cfg)
        tables = schema(cfg)
        self.metrics, self.runs, self.claims = tables.metrics, tables.runs, tables.claims
        # An embedded DuckDB store names its holder beside the file (lockfile.py).
        self._duckdb_file = database_path(self.url) if self.engine.dialect.name == "duckdb" else None
        # On the default layout the store is the warehouse's file: a run must not create it.
        self._warehouse = cfg.warehouse.url if same_database(self.url, cfg.warehouse.url) else None

    @property
    def where(self) -> str:
        return f"table {self.metrics.name} at {redact(self.url)}"

    def ensure(self, window: Window | None = None) -> None:
        """Create the tables if needed. A DuckDB file another process holds is waited for
        (store.lock_timeout_seconds); if it is still held and the holder runs `window`,
        that is a second run of one window: WindowClaimed naming the holder. With a
        window (a run starts), a store that is the warehouse's missing file is an error
        naming it, checked before connecting: never a new, empty warehouse."""
        if window is not None:
            self.check_warehouse_file()
        try:
            create_tables(
                self.engine, (self.metrics, self.runs, self.claims), f"the metrics store at {redact(self.url)}"
            )
        except FileLocked as err:
            holder = read_holder(Path(err.path), err.pid) if err.path else None
            claim = claim_of(holder, window) if holder and window else None
            if claim is None:
                raise StoreError(f"{err} (the holder: {describe(holder, err.pid)})") from None
            raise WindowClaimed(
                f"{window} is being run by {describe(holder, err.pid)}, which holds the DuckDB file {err.path}; "
                f"skipped after waiting {err.timeout:g} s for it (store.lock_timeout_seconds)"
            ) from None

    def check_warehouse_file(self) -> None:
        path = database_path(self._warehouse) if self._warehouse else None
        if path is not None and not path.exists():
            raise missing_database(self._warehouse or "")

    def _publish_claims(self) -> None:
        if self._duckdb_file is not None:
            publish_claims(self.engine, self.claims, self._duckdb_file)

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
            self._publish_claims()
            if done:
                raise WindowDone(f"{window} already has a finished run ({latest}); skipped (redo={mode})")
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
        self._publish_claims()

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
        self.check_warehouse_file()  # planning runs: they will read it
        self.ensure()
        return _claims.window_states(self.engine, self.claims, self.runs, windows, now or utcnow())

    def degrade_run(self, run_id: str, error: str) -> None:
        """A finished run turns out degraded (its push failed): say so, keeping its error."""
        runs = self.runs
        with self.engine.begin() as conn:
            previous = conn.execute(sa.select(runs.c.error).where(runs.c.run_id == run_id)).scalar()
            error = f"{previous}; {error}" if previous else error
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(status="degraded", error=error))

    def last_success(self, granularity: str) -> dt.datetime | None:
        """When the latest successful run of a granularity finished (aware, UTC)."""
        runs = self.runs
        q = sa.select(sa.func.max(runs.c.finished_at)).where(
            runs.c.status == "success", runs.c.granularity == granularity
        )
        with self.engine.connect() as conn:
            value = conn.execute(q).scalar()
        return None if value is None else as_datetime(value).replace(tzinfo=dt.UTC)

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
                as_datetime(r["window_start"]),
                as_datetime(r["window_end"]),
                r["granularity"],
                r["metric"],
                json.loads(r["labels"]),
                float(r["value"]),
                r["run_id"],
            )
            for r in rows
        ]
