"""Warehouse access: the mapped interactions table, its column types, window filters, reads.

SQLAlchemy is used for connections and for building every statement, so table and
column names from the config are always quoted identifiers, never pasted into SQL.
Small aggregate results come back as rows; bulk columns come back as Arrow, through
DuckDB's native cursor where the warehouse is DuckDB (docs/scaling.md).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from aimon.config import CONTRACT_COLUMNS, REQUIRED_COLUMNS, WarehouseConfig
from aimon.config.sources import COLUMN_KINDS, StoreConfig, type_kind
from aimon.engines import (
    LOCK_TIMEOUT_SECONDS,
    database_path,
    get_engine,
    missing_database,
    redact,
    same_database,
)
from aimon.errors import ColumnTypeError, ContractError
from aimon.windows import Window

# SQLite keeps timestamps as text and compares them as text with the window's bounds
# ('YYYY-MM-DD HH:MM:SS.ffffff'): only naive UTC text in that form sorts right. A value
# with an offset, a 'T' separator, a bare date or a number would be put in the wrong
# window, so the check refuses the column instead (docs/warehouse.md).
_SQLITE_TS_OK = (
    "typeof({c}) = 'text' AND substr({c}, 1, 19) GLOB "
    "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]' AND "
    "(length({c}) = 19 OR (substr({c}, 20, 1) = '.' AND length({c}) > 20 AND substr({c}, 21) NOT GLOB '*[^0-9]*'))"
)


@dataclass(frozen=True)
class Interactions:
    """The interactions table as the contract sees it: contract name -> column."""

    table: sa.TableClause
    present: dict[str, str]  # contract name -> physical column name, for columns that exist
    all_columns: tuple[str, ...]

    def col(self, name: str) -> sa.ColumnClause[Any] | None:
        phys = self.present.get(name)
        return None if phys is None else self.table.c[phys]

    def req(self, name: str) -> sa.ColumnClause[Any]:
        c = self.col(name)
        if c is None:  # guarded by describe(); kept for type narrowing
            raise ContractError(f"column for {name!r} is missing")
        return c

    def has(self, *names: str) -> bool:
        return all(n in self.present for n in names)

    def in_window(self) -> sa.ColumnElement[bool]:
        ts = self.req("timestamp")
        return sa.and_(
            ts >= sa.bindparam("window_start", type_=sa.DateTime),
            ts < sa.bindparam("window_end", type_=sa.DateTime),
        )


def window_params(window: Window) -> dict[str, dt.datetime]:
    return {"window_start": window.start, "window_end": window.end}


def _split(name: str) -> tuple[str | None, str]:
    schema, _, table = name.rpartition(".")
    return (schema or None), table


class Warehouse:
    """The warehouse, opened read-only where the engine allows it. `store` (the config's
    store section) says whether the store is the same embedded file: then the warehouse
    shares the store's read-write engine (DuckDB opens a file in one mode per process)."""

    def __init__(self, cfg: WarehouseConfig, store: StoreConfig | None = None):
        self.cfg = cfg
        store_url = (store.url if store else None) or cfg.url
        timeout = store.lock_timeout_seconds if store else LOCK_TIMEOUT_SECONDS
        self._shared_file = database_path(cfg.url) if same_database(store_url, cfg.url) else None
        if self._shared_file is not None:  # the store's engine: it must exist, see table_columns
            self.engine = get_engine(store_url, lock_timeout=timeout)
        else:
            self.engine = get_engine(cfg.url, read_only=True, lock_timeout=timeout)
        self.backend = self.engine.dialect.name

    @property
    def where(self) -> str:
        return f"{self.cfg.interactions_table} at {redact(self.cfg.url)}"

    def table_columns(self, name: str) -> tuple[str, ...]:
        if self._shared_file is not None and not self._shared_file.exists():
            raise missing_database(self.cfg.url)
        schema, table = _split(name)
        try:
            exists = sa.inspect(self.engine).has_table(table, schema=schema)
        except sa.exc.OperationalError as err:
            raise ContractError(f"cannot connect to the warehouse {redact(self.cfg.url)}: {err.orig}") from None
        if not exists:
            raise ContractError(
                f"table {name!r} not found in the warehouse {redact(self.cfg.url)}: "
                "create it or set warehouse.interactions_table"
            )
        probe = sa.select(sa.text("*")).select_from(sa.table(table, schema=schema)).limit(0)
        with self.engine.connect() as conn:
            return tuple(conn.execute(probe).keys())

    def describe(self) -> Interactions:
        """Map contract names to the table's columns; fail on what the contract needs."""
        cols = self.table_columns(self.cfg.interactions_table)
        mapping = self.cfg.columns
        for key, phys in mapping.items():
            if phys not in cols:
                raise ContractError(
                    f"warehouse.columns.{key} maps to column {phys!r}, which table "
                    f"{self.cfg.interactions_table!r} does not have (it has: {', '.join(cols)})"
                )
        present: dict[str, str] = {}
        for name in CONTRACT_COLUMNS:
            phys = mapping.get(name, name)
            if phys in cols:
                present[name] = phys
        missing = [n for n in REQUIRED_COLUMNS if n not in present]
        if missing:
            raise ContractError(
                f"table {self.cfg.interactions_table!r} has no column for required "
                f"{', '.join(repr(m) for m in missing)}: add it or map it in warehouse.columns "
                f"(the table has: {', '.join(cols)})"
            )
        self.check_types(present)
        schema, table = _split(self.cfg.interactions_table)
        tc = sa.table(table, *[sa.column(p) for p in dict.fromkeys(present.values())], schema=schema)
        return Interactions(tc, present, cols)

    def column_types(self, name: str) -> dict[str, str]:
        """Column -> the engine's type name, from its catalogue (views included)."""
        schema, table = _split(name)
        with self.engine.connect() as conn:
            if self.backend == "sqlite":
                prep = self.engine.dialect.identifier_preparer
                target = (f"{prep.quote(schema)}." if schema else "") + f"table_info({prep.quote(table)})"
                return {r[1]: str(r[2] or "") for r in conn.exec_driver_sql(f"PRAGMA {target}")}
            if self.backend in ("duckdb", "postgresql"):
                ic = sa.table(
                    "columns",
                    *(sa.column(c) for c in ("column_name", "data_type", "table_name", "table_schema")),
                    schema="information_schema",
                )
                owner = sa.literal(schema) if schema else sa.func.current_schema()
                q = sa.select(ic.c.column_name, ic.c.data_type).where(
                    ic.c.table_name == table, ic.c.table_schema == owner
                )
                return {r[0]: str(r[1]) for r in conn.execute(q)}
        return {c["name"]: str(c["type"]) for c in sa.inspect(self.engine).get_columns(table, schema=schema)}

    def check_types(self, present: dict[str, str]) -> None:
        """Every mapped column's type against the contract: ColumnTypeError (exit 2)
        naming each mismatch, instead of a driver error with the SQL half-way through a run."""
        tname = self.cfg.interactions_table
        try:
            types = self.column_types(tname)
        except sa.exc.DBAPIError as err:
            where = f"{tname!r} at {redact(self.cfg.url)}"
            raise ContractError(f"cannot read the column types of {where}: {err.orig}") from None
        bad = []
        for name, phys in present.items():
            kind, allowed = type_kind(types.get(phys, "")), COLUMN_KINDS.get(name, ("text",))
            if self.backend == "sqlite" and name == "timestamp":
                allowed += ("text",)  # SQLite's timestamps are text anyway: their values are checked below
            if kind is not None and kind not in allowed:
                bad.append(
                    f"column {phys!r} (contract column {name!r}) is {types[phys]}, expected {' or '.join(allowed)}"
                )
        if bad:
            hint = ""
            if any("'timestamp')" in b for b in bad):
                hint = (
                    " (text timestamps: in a view, CAST(col AS TIMESTAMPTZ) on DuckDB or PostgreSQL reads ISO "
                    "values with offsets as UTC)"
                )
            raise ColumnTypeError(
                f"table {tname!r}: {'; '.join(bad)}: cast it in a view, or map another column (warehouse.columns)"
                + hint
            )
        if self.backend == "sqlite":
            self._check_sqlite_timestamps(present["timestamp"])

    def _check_sqlite_timestamps(self, phys: str) -> None:
        tname = self.cfg.interactions_table
        schema, table = _split(tname)
        col = self.engine.dialect.identifier_preparer.quote(phys)
        src = sa.table(table, sa.column(phys), schema=schema)
        not_ok = sa.and_(src.c[phys].is_not(None), sa.text(f"NOT ({_SQLITE_TS_OK.format(c=col)})"))
        with self.engine.connect() as conn:
            example = conn.execute(sa.select(src.c[phys]).where(not_ok).limit(1)).scalar()
            if example is None:
                return
            n = conn.execute(sa.select(sa.func.count()).select_from(src).where(not_ok)).scalar_one()
        offsets = isinstance(example, str) and bool(re.search(r"(Z|[+-]\d\d:?\d\d)$", example))
        raise ColumnTypeError(
            f"table {tname!r}: column {phys!r} (contract column 'timestamp') holds {n} value(s) that are not "
            f"naive UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]' (e.g. {example!r}"
            + (", with a UTC offset" if offsets else "")
            + "); SQLite compares timestamps as text, so they would land in the wrong window: cast it in a view "
            f"(datetime({phys}) turns ISO values with offsets into naive UTC), or map another column"
        )

    def fetch(self, stmt: sa.Executable, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Small results (aggregates) as dicts."""
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt, params or {}).mappings()]

    def _fetch_arrow_adbc(self, stmt: sa.Select[Any], params: dict[str, Any] | None) -> pa.Table | None:
        """PostgreSQL through ADBC: Arrow off the wire, ~3x faster than row fetches and a
        fraction of the memory (docs/scaling.md). None when the driver is missing."""
        try:
            import adbc_driver_postgresql.dbapi as adbc  # noqa: PLC0415  lazy: optional driver, PostgreSQL only
        except ImportError:
            return None
        compiled = stmt.compile(dialect=postgresql.psycopg.dialect(paramstyle="numeric_dollar"))
        values = {**compiled.params, **(params or {})}
        positional = [values[k] for k in (compiled.positiontup or [])]
        uri = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with adbc.connect(uri) as conn, conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute(str(compiled), positional or None)
            return cur.fetch_arrow_table()

    def scalar(self, stmt: sa.Executable, params: dict[str, Any] | None = None) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(stmt, params or {}).scalar_one()

    def fetch_arrow(self, stmt: sa.Select[Any], params: dict[str, Any] | None = None) -> pa.Table:
        """Bulk columns as Arrow: DuckDB's own cursor is ~40x faster than row fetches."""
        if self.backend == "duckdb":
            compiled = stmt.compile(dialect=self.engine.dialect)
            values = {**compiled.params, **(params or {})}
            positional = [values[k] for k in (compiled.positiontup or [])]
            with self.engine.connect() as conn:
                raw = conn.connection.driver_connection
                assert raw is not None
                return raw.sql(str(compiled), params=positional or None).to_arrow_table()  # type: ignore[no-any-return]
        if self.backend == "postgresql":
            table = self._fetch_arrow_adbc(stmt, params)
            if table is not None:
                return table
        with self.engine.connect() as conn:
            result = conn.execute(stmt, params or {})
            names = list(result.keys())
            rows = result.fetchall()
        return (
            pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})
            if rows
            else pa.table({n: pa.array([], pa.null()) for n in names})
        )
