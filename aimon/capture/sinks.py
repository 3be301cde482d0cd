"""Where the logger's batches go: the warehouse table itself, or rotating JSONL files.

A sink's `write(rows)` takes one batch (contract column names, checked and masked) and
raises on failure: the logger then spools the batch and retries later. Loading is
idempotent on request_id: a row whose id the table already holds (in the batch's time
range) is skipped, and a batch holding an id twice keeps its first row, so a replayed
spool never doubles a row.

- `WarehouseSink(url, table)`: any SQLAlchemy URL. DuckDB gets the batch as Arrow (one
  statement per batch, the file opened only for it: the monitoring runs need its lock
  too); PostgreSQL gets it by COPY into a temporary table; others by executemany into a
  temporary table. Then one INSERT ... SELECT of the new ids. `create=True` creates the
  contract table (aimon.capture.record.create_table_sql) when it is missing.
- `JsonlSink(directory, rotate="hour"|"day")`: one file per hour or day of the rows'
  timestamps (interactions-2026-12-06T14.jsonl), appended; `aimon ingest jsonl` loads
  them later.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from aimon.capture.record import COLUMNS, create_table_sql, to_jsonl, utc_naive


class Sink(Protocol):
    def write(self, rows: list[dict[str, Any]]) -> int | None: ...  # rows added, when the sink knows

    def close(self) -> None: ...


def _cell(name: str, v: Any) -> Any:
    """A value as the created table stores it: lists and mappings as JSON text."""
    if v is None:
        return None
    kind = COLUMNS[name][0] if name in COLUMNS else "scalar"
    if kind in ("ids", "vector", "json"):
        return json.dumps(list(v) if kind != "json" else v, separators=(",", ":"))
    if kind == "any":
        return v if isinstance(v, str) else json.dumps(v)
    if kind == "ts":
        return utc_naive(v)
    return v


_PLAIN = ("text", "int", "float", "scalar")


def column(name: str, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    """One column of a batch as the table stores it (no per-value call for plain ones)."""
    kind = COLUMNS[name][0] if name in COLUMNS else "scalar"
    if kind in _PLAIN:
        return [r.get(name) for r in rows]
    if kind == "ts":
        return [v if v is None or v.tzinfo is None else utc_naive(v) for v in (r.get(name) for r in rows)]
    return [_cell(name, r.get(name)) for r in rows]


def arrow_batch(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = tuple(COLUMNS)) -> Any:
    """A batch of rows (one per request_id, as first_per_id leaves them) as an Arrow
    table of the `columns` some row fills, stored as the created table stores them."""
    import pyarrow as pa  # noqa: PLC0415

    return pa.table({c: pa.array(column(c, rows), _arrow_type(c)) for c in present(columns, rows)})


def present(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The table's columns some row of the batch fills (the rest stay NULL)."""
    keys: set[str] = set().union(*rows)
    return [c for c in columns if c in keys]


def first_per_id(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    seen: set[str] = set()
    out = []
    for r in rows:
        rid = r["request_id"]
        if rid not in seen:
            seen.add(rid)
            out.append(r)
    return out


class WarehouseSink:
    def __init__(
        self,
        url: str,
        table: str = "interactions",
        *,
        create: bool = False,
        features: Mapping[str, str] | None = None,
        hold_seconds: float = 3.0,
        yield_seconds: float = 0.3,
    ):
        """DuckDB: one connection is kept across back-to-back writes for up to
        `hold_seconds`, then closed for `yield_seconds` (longer than the monitoring
        runs' 0.25 s lock poll, so a run waiting for the file gets its turn);
        `release()` (the logger calls it when its queue is empty) closes it at once.
        hold_seconds=0: open and close the file for every write."""
        import sqlalchemy as sa  # noqa: PLC0415  lazy: the logger with a JSONL sink needs no SQLAlchemy

        self.url = url
        self.table = table
        self.features = dict(features or {})
        self.create = create
        self._sa = sa
        self.backend = sa.engine.make_url(url).get_backend_name()
        self._engine: Any = None if self.backend == "duckdb" else sa.create_engine(url)
        self._columns: list[str] | None = None
        self._session: Any = None
        self._lock = threading.Lock()
        self.hold_seconds = hold_seconds
        self.yield_seconds = yield_seconds
        self._held: Any = None  # (context manager, connection, opened at)

    # -- the table --------------------------------------------------------------------------

    def _duckdb(self) -> Any:
        if self._session is not None:
            return contextlib.nullcontext(self._session)
        if self.hold_seconds <= 0:
            return duckdb_connection(self.url)
        return self._hold()

    @contextlib.contextmanager
    def _hold(self) -> Iterator[Any]:
        if self._held is not None and time.monotonic() - self._held[2] >= self.hold_seconds:
            self._release()
            time.sleep(self.yield_seconds)  # a monitoring run waiting for the file's lock takes it now
        if self._held is None:
            cm = duckdb_connection(self.url)
            self._held = (cm, cm.__enter__(), time.monotonic())
        try:
            yield self._held[1]
        except BaseException:
            self._release()  # a failed write starts again from a new connection
            raise

    def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held[0].__exit__(None, None, None)

    def after_fork(self) -> None:
        """In a forked child: the parent's connections are the parent's (SQLAlchemy's
        advice: dispose the pool without closing them); a new lock."""
        self._held = None
        self._lock = threading.Lock()
        if self._engine is not None:
            self._engine.dispose(close=False)

    def release(self) -> None:
        """Close the DuckDB connection kept across writes (the file's lock goes with it)."""
        with self._lock:
            self._release()

    @contextlib.contextmanager
    def session(self) -> Iterator[WarehouseSink]:
        """Keep one DuckDB connection open across writes (a bulk load: `aimon ingest`).
        Outside a session every batch opens and closes the file, so the monitoring runs
        (another process) can take its lock between writes: 3x slower (docs/capture.md,
        "Costs"). Other warehouses pool their connections anyway."""
        if self.backend != "duckdb" or self._session is not None:
            yield self
            return
        with duckdb_connection(self.url) as con:
            self._session = con
            try:
                yield self
            finally:
                self._session = None

    def _prepare(self, con: Any) -> list[str]:
        """The table's columns that a row may fill (created first when asked)."""
        if self._columns is not None:
            return self._columns
        if self.create:
            sql = create_table_sql(self.table, self.features, unique=False)
            if self.backend == "duckdb":
                con.execute(sql)
            else:
                with self._engine.begin() as c:
                    c.exec_driver_sql(sql)
                    c.exec_driver_sql(f'CREATE INDEX IF NOT EXISTS "{self.table}_ts" ON "{self.table}" ("timestamp")')
        if self.backend == "duckdb":
            names = [r[0] for r in con.execute(f'DESCRIBE "{self.table}"').fetchall()]
        else:
            with self._engine.connect() as c:
                names = list(c.exec_driver_sql(f'SELECT * FROM "{self.table}" WHERE 1 = 0').keys())
        if "request_id" not in names:
            raise ValueError(f"table {self.table} has no request_id column: loading could not be idempotent")
        known = set(COLUMNS) | set(self.features)
        self._columns = [n for n in names if n in known]
        return self._columns

    def _insert_new(self, src: str, cols: list[str], rows: Sequence[Mapping[str, Any]]) -> tuple[str, dict[str, Any]]:
        """The INSERT of the batch's rows whose id the table does not hold. The id check
        reads only the batch's time range (given as parameters, so the engine prunes by
        its zone maps or timestamp index: a duplicate carries its original's timestamp)."""
        stamps = [utc_naive(r["timestamp"]) for r in rows]
        return self._insert_sql(src, cols), {"lo": min(stamps), "hi": max(stamps)}

    def _insert_sql(self, src: str, cols: Sequence[str]) -> str:
        q = ", ".join(f'"{c}"' for c in cols)
        return (
            f'INSERT INTO "{self.table}" ({q}) SELECT {q} FROM {src} AS b WHERE NOT EXISTS '
            f'(SELECT 1 FROM "{self.table}" AS t WHERE t."timestamp" >= :lo AND t."timestamp" <= :hi '
            "AND t.request_id = b.request_id)"
        )

    # -- writing ----------------------------------------------------------------------------

    def write(self, rows: list[dict[str, Any]]) -> int:
        """Insert the rows whose request_id the table does not hold; returns how many."""
        if not rows:
            return 0
        rows_ = first_per_id(rows)
        with self._lock:
            if self.backend == "duckdb":
                return self._write_duckdb(rows_)
            if self.backend == "postgresql":
                return self._write_postgres(rows_)
            return self._write_generic(rows_)

    def _write_duckdb(self, rows: list[Mapping[str, Any]]) -> int:
        with self._duckdb() as con:
            return self._insert_arrow(con, arrow_batch(rows, self._prepare(con)))

    def write_arrow(self, batch: Any) -> int:
        """write() for a batch already in Arrow (arrow_batch(): one row per request_id;
        what `aimon ingest otlp`'s worker processes send); returns the rows added."""
        if batch.num_rows == 0:
            return 0
        if self.backend != "duckdb":
            return self.write(batch.to_pylist())
        with self._lock, self._duckdb() as con:
            known = set(self._prepare(con))
            return self._insert_arrow(con, batch.select([c for c in batch.column_names if c in known]))

    def _insert_arrow(self, con: Any, batch: Any) -> int:
        import pyarrow.compute as pc  # noqa: PLC0415

        span = pc.min_max(batch.column("timestamp"))
        sql = self._insert_sql("aimon_batch", batch.column_names).replace(":lo", "$lo").replace(":hi", "$hi")
        con.register("aimon_batch", batch)
        try:
            got = con.execute(sql, {"lo": span["min"].as_py(), "hi": span["max"].as_py()}).fetchone()
        finally:
            con.unregister("aimon_batch")
        return int(got[0]) if got else 0

    def _write_postgres(self, rows: list[Mapping[str, Any]]) -> int:
        raw = self._engine.raw_connection()
        try:
            cols = present(self._prepare(None), rows)
            q = ", ".join(f'"{c}"' for c in cols)
            cur = raw.cursor()
            cur.execute(f'CREATE TEMP TABLE IF NOT EXISTS aimon_batch (LIKE "{self.table}" INCLUDING DEFAULTS)')
            cur.execute("TRUNCATE aimon_batch")
            with cur.copy(f"COPY aimon_batch ({q}) FROM STDIN") as copy:
                for values in zip(*(column(c, rows) for c in cols), strict=True):
                    copy.write_row(values)
            sql, p = self._insert_new("aimon_batch", cols, rows)
            cur.execute(sql.replace(":lo", "%(lo)s").replace(":hi", "%(hi)s"), p)
            added = int(cur.rowcount)
            raw.commit()
            return added
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()

    def _write_generic(self, rows: list[Mapping[str, Any]]) -> int:
        sa = self._sa
        cols = present(self._prepare(None), rows)
        q = ", ".join(f'"{c}"' for c in cols)
        params = ", ".join(f":p{i}" for i in range(len(cols)))
        with self._engine.begin() as c:
            c.exec_driver_sql("DROP TABLE IF EXISTS aimon_batch")
            c.exec_driver_sql(f'CREATE TEMP TABLE aimon_batch AS SELECT {q} FROM "{self.table}" WHERE 1 = 0')
            c.execute(
                sa.text(f"INSERT INTO aimon_batch ({q}) VALUES ({params})"),
                [{f"p{i}": _cell(col, r.get(col)) for i, col in enumerate(cols)} for r in rows],
            )
            sql, p = self._insert_new("aimon_batch", cols, rows)
            added = int(c.execute(sa.text(sql), p).rowcount)
            c.exec_driver_sql("DROP TABLE aimon_batch")
            return added

    def close(self) -> None:
        self.release()
        if self._engine is not None:
            self._engine.dispose()


@contextlib.contextmanager
def duckdb_connection(url: str) -> Iterator[Any]:
    """A DuckDB connection to the URL's file for one write: opened and closed, so the
    monitoring runs (another process) can take the file's lock between writes. In a
    process where aimon itself has the file open (a notebook, `aimon demo --live`),
    DuckDB refuses a second, differently configured open: then aimon's own pooled
    connection (aimon.engines) is borrowed instead."""
    import duckdb  # noqa: PLC0415
    import sqlalchemy as sa  # noqa: PLC0415

    path = sa.engine.make_url(url).database or ":memory:"
    try:
        con = duckdb.connect(path)
    except duckdb.ConnectionException as err:
        if "different configuration" not in str(err):
            raise
        from aimon.engines import get_engine  # noqa: PLC0415

        raw = get_engine(url).raw_connection()
        try:
            yield raw.driver_connection  # autocommit: each statement (or the caller's BEGIN/COMMIT) commits
        finally:
            raw.close()  # back to the pool
        return
    try:
        yield con
    finally:
        con.close()


def _arrow_type(name: str) -> Any:
    import pyarrow as pa  # noqa: PLC0415

    kind = COLUMNS[name][0] if name in COLUMNS else None
    return {
        "ts": pa.timestamp("us"),
        "int": pa.int64(),
        "float": pa.float64(),
    }.get(kind or "")


# A logger's flusher shares the GIL with the app: a sink it writes through sleeps
# `pause` seconds every PAUSE_EVERY rows of Python work, so the app's event loop never
# waits the 5 ms switch interval behind a batch (docs/capture.md, "Costs").
PAUSE_EVERY = 32


class JsonlSink:
    def __init__(
        self, directory: str | os.PathLike[str], rotate: Literal["hour", "day"] = "hour", prefix: str = "interactions"
    ):
        if rotate not in ("hour", "day"):
            raise ValueError(f"rotate must be hour or day, not {rotate!r}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rotate = rotate
        self.prefix = prefix
        self.pause = 0.0  # seconds off the GIL every PAUSE_EVERY rows (the logger sets it)
        self._lock = threading.Lock()
        self._paths: dict[tuple[int, ...], Path] = {}

    def path_for(self, ts: dt.datetime) -> Path:
        ts = utc_naive(ts)
        key = (ts.year, ts.month, ts.day, ts.hour if self.rotate == "hour" else -1)
        path = self._paths.get(key)
        if path is None:
            stamp = ts.strftime("%Y-%m-%dT%H") if self.rotate == "hour" else ts.strftime("%Y-%m-%d")
            path = self._paths[key] = self.directory / f"{self.prefix}-{stamp}.jsonl"
        return path

    def write(self, rows: list[dict[str, Any]]) -> int:
        by_file: dict[Path, list[bytes]] = {}
        pause = self.pause
        for i, r in enumerate(rows):
            if pause and i % PAUSE_EVERY == PAUSE_EVERY - 1:
                time.sleep(pause)
            by_file.setdefault(self.path_for(r["timestamp"]), []).append(to_jsonl(r))
        with self._lock:
            for path, lines in by_file.items():
                with open(path, "ab") as f:
                    f.writelines(lines)
        return len(rows)

    def close(self) -> None:
        pass
