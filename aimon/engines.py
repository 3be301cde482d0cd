"""Connections: one SQLAlchemy engine per database URL and mode per process, embedded
files opened read-only where the engine allows it (never created by a read), a DuckDB
file another process holds waited for and then named, and URLs with their passwords
masked for every message. The warehouse (aimon.warehouse) and the store (aimon.store)
both connect through here.
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from aimon.errors import ConfigError, ContractError, FileLocked


def _sqlite_md5(value: Any) -> str | None:
    if value is None:
        return None
    raw = value if isinstance(value, bytes) else str(value).encode()
    return hashlib.md5(raw, usedforsecurity=False).hexdigest()


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _sqlite_regexp_replace(value: Any, pattern: str, replacement: str, flags: str = "") -> str | None:
    """regexp_replace(text, pattern, replacement, flags) as DuckDB and PostgreSQL have
    it: 'g' replaces every match, otherwise the first."""
    if value is None:
        return None
    return _compiled(pattern).sub(replacement, str(value), count=0 if "g" in (flags or "") else 1)


def redact(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"


DUCKDB_MEMORY_LIMIT = "1GB"  # default buffer cache of an embedded DuckDB warehouse
SQLITE_BUSY_TIMEOUT = 30.0  # seconds a SQLite connection waits for another writer
LOCK_TIMEOUT_SECONDS = 60.0  # default of store.lock_timeout_seconds
_LOCK_POLL_SECONDS = 0.25
_LOCK_PID = re.compile(r"\(PID (\d+)\)")


def database_path(url: str) -> Path | None:
    """The file of an embedded DuckDB or SQLite URL (absolute); None for a server or memory."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None
    db = parsed.database
    if parsed.get_backend_name() not in ("duckdb", "sqlite") or db in (None, "", ":memory:"):
        return None
    if db.startswith("file:"):  # SQLite's URI form
        db = db.removeprefix("file:").split("?")[0].removeprefix("//")
    return Path(db).expanduser().resolve()


def same_database(a: str, b: str) -> bool:
    """Do two URLs name one embedded database file (or are they the same URL)?"""
    pa_, pb = database_path(a), database_path(b)
    return a == b or (pa_ is not None and pa_ == pb)


def _connect_duckdb(dialect: Any, cargs: Any, cparams: dict[str, Any], path: Path, timeout: float) -> Any:
    """Open a DuckDB file, waiting up to `timeout` seconds while another process holds its
    lock (DuckDB lets one process at a time write a file), then FileLocked naming it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return dialect.connect(*cargs, **{**cparams, "config": dict(cparams.get("config", {}))})
        except Exception as err:  # duckdb.IOException / ConnectionException: see the message
            msg = str(err)
            if cparams.get("read_only") and "different configuration" in msg:
                # This process already has the file open read-write (as the store, say):
                # DuckDB shares one instance per file and mode, so use that one.
                cparams = {k: v for k, v in cparams.items() if k != "read_only"}
                continue
            if "Could not set lock" not in msg:
                raise
            if time.monotonic() >= deadline:
                m = _LOCK_PID.search(msg)
                pid = int(m.group(1)) if m else None
                raise FileLocked(
                    f"the DuckDB file {path} is in use by another process"
                    + (f" (PID {pid})" if pid else "")
                    + f" and stayed locked for {timeout:g} s (store.lock_timeout_seconds): an embedded DuckDB "
                    "file takes one process at a time; let that run finish, raise store.lock_timeout_seconds, "
                    "or put the store on PostgreSQL for concurrent runs (docs/warehouse.md)",
                    path=str(path),
                    pid=pid,
                    timeout=timeout,
                ) from None
            time.sleep(max(0.0, min(_LOCK_POLL_SECONDS, deadline - time.monotonic())))


def missing_database(url: str) -> ContractError:
    return ContractError(
        f"the warehouse file {database_path(url)} ({redact(url)}) does not exist: aimon never creates the "
        "warehouse; check warehouse.url (or AIMON_WAREHOUSE_URL) and the directory aimon runs in, "
        "or seed a demo warehouse with `aimon demo`"
    )


@functools.cache
def get_engine(url: str, *, read_only: bool = False, lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> sa.Engine:
    """One engine per URL (and mode) per process, so the store and the warehouse share a
    DuckDB file's single database instance.

    `read_only` opens an embedded file read-only (DuckDB `read_only`, SQLite `mode=ro`):
    a missing file is then an error naming it (missing_database), never a new empty one.
    A DuckDB file another process holds is waited for up to `lock_timeout` seconds, then
    FileLocked."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as err:
        raise ConfigError(f"warehouse/store url {url!r} is not a SQLAlchemy URL: {err}") from None
    backend = parsed.get_backend_name()
    path = database_path(url)
    if path is not None and not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    connect_args: dict[str, Any] = {}
    if backend == "sqlite" and "timeout" not in parsed.query:
        # A SQLite store written by several processes (Dask workers, a backfill's runs)
        # waits up to 30 s for another writer's lock instead of sqlite3's 5 s.
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT
    if read_only and path is not None:
        if backend == "duckdb":
            connect_args["read_only"] = True
        elif backend == "sqlite" and not parsed.query.get("uri"):
            parsed = parsed.set(database=path.as_uri(), query={**parsed.query, "mode": "ro", "uri": "true"})
    options: dict[str, Any] = {}
    if read_only and backend == "duckdb":
        # DuckDB keeps one database instance per file and mode while any connection to it
        # is open, and refuses a read-write open beside a read-only one in the same
        # process. Pooled read-only connections would keep the instance alive after the
        # read (a notebook, a test, a benchmark that then runs a window on the file).
        options["poolclass"] = sa.pool.NullPool
    try:
        engine = sa.create_engine(parsed, pool_pre_ping=backend == "postgresql", connect_args=connect_args, **options)
    except (ImportError, sa.exc.NoSuchModuleError) as err:
        raise ConfigError(f"no driver for {redact(url)}: {err}") from None

    if path is not None:

        @sa.event.listens_for(engine, "do_connect")
        def _open(dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
            if read_only and not path.exists():
                raise missing_database(url)
            if backend == "duckdb":
                return _connect_duckdb(dialect, cargs, cparams, path, lock_timeout)
            return None  # SQLite: the dialect connects as usual

    if backend == "sqlite":
        # md5() as DuckDB and PostgreSQL have it (lower-case hex of the UTF-8 text): the
        # drift pre-sample hashes request ids with it, so it keeps the same rows here.
        @sa.event.listens_for(engine, "connect")
        def _md5(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.create_function("md5", 1, _sqlite_md5, deterministic=True)
            # The cost optimiser normalises prompts with it (aimon.tasks.costopt.cache).
            dbapi_conn.create_function("regexp_replace", 4, _sqlite_regexp_replace, deterministic=True)

    if backend in ("postgresql", "duckdb"):
        # The contract says timestamps are UTC; compare them in UTC whatever the
        # server's or this machine's default zone is.
        @sa.event.listens_for(engine, "connect")
        def _utc(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            try:
                cur.execute("SET TIME ZONE 'UTC'" if backend == "postgresql" else "SET TimeZone='UTC'")
            finally:
                cur.close()
            if backend == "postgresql":
                dbapi_conn.commit()
            elif "memory_limit" not in parsed.query:
                # DuckDB keeps the pages it reads cached up to 80% of RAM, in this process:
                # on a 10M-row day with full-size reference days that cache was 1.5 GiB
                # of a 3.7 GiB peak. Capped, the run is as fast (the OS caches the file)
                # and the peak is 2.3 GiB; a `?memory_limit=...` in the URL overrides it.
                dbapi_conn.execute(f"SET memory_limit='{DUCKDB_MEMORY_LIMIT}'")

    return engine
