"""The data-contract check: which rows of the window are accepted, which are rejected, why.

The check runs in the warehouse (one GROUP BY over the window) and every analyzer
reads through the same `valid_rows` predicate, so a rejected row is counted once, by
its first broken rule, and never enters a figure.

A numeric column's value is checked before its sign: a value that is not a number
(SQLite's dynamic typing lets a REAL or INTEGER column hold text), then NaN or an
infinity, then a negative number. NaN is caught by comparisons, not by `isnan`, so
one predicate works everywhere: DuckDB and PostgreSQL hold NaN equal to itself and
above every number (so `c > DBL_MAX`), IEEE engines hold it unequal to itself
(`c != c`), and SQLite stores a NaN as NULL (a missing value, not a rejected one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from aimon.records import MetricRecord
from aimon.warehouse import Interactions, Warehouse, window_params
from aimon.windows import Window

TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cached_input_tokens")
# The largest finite double: only NaN and +inf compare above it in DuckDB and
# PostgreSQL (NaN sorts above every number there), only -inf below its negative.
_DBL_MAX: sa.ColumnElement[float] = sa.literal_column("1.7976931348623157e308")


class NonNumeric(FunctionElement[bool]):
    """True where a non-null value is not a number. Only SQLite's dynamic typing lets a
    numeric column hold text or a blob; a typed engine's numeric column cannot, so
    there the rule is constant false (and its reason's count always 0)."""

    type = sa.Boolean()
    inherit_cache = True
    name = "non_numeric"


@compiles(NonNumeric)
def _never(element: NonNumeric, compiler: SQLCompiler, **kw: Any) -> str:
    return "(1 = 0)"


@compiles(NonNumeric, "sqlite")
def _sqlite_non_numeric(element: NonNumeric, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = element.clauses
    return f"(typeof({compiler.process(arg, **kw)}) NOT IN ('integer', 'real', 'null'))"


def nonfinite(c: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """NaN, +inf or -inf, null-safe, on every engine (module docstring)."""
    return sa.and_(c.is_not(None), sa.or_(c != c, c > _DBL_MAX, c < -_DBL_MAX))


def reject_rules(ix: Interactions) -> list[tuple[str, sa.ColumnElement[bool]]]:
    """(reason, null-safe 'row breaks the rule' predicate), in the order they are applied."""
    rules: list[tuple[str, sa.ColumnElement[bool]]] = [
        ("null_model", ix.req("model").is_(None)),
        ("null_status", ix.req("status").is_(None)),
    ]

    def numeric(name: str) -> None:
        c = ix.col(name)
        if c is not None:
            # Value before sign: SQLite orders text above every number, and -inf is negative.
            rules.append((f"non_numeric_{name}", sa.and_(c.is_not(None), NonNumeric(c))))
            rules.append((f"nonfinite_{name}", nonfinite(c)))
            rules.append((f"negative_{name}", sa.and_(c.is_not(None), c < 0)))

    numeric("latency_seconds")
    for t in TOKEN_COLUMNS:
        numeric(t)
    cached, inp = ix.col("cached_input_tokens"), ix.col("input_tokens")
    if cached is not None and inp is not None:
        rules.append(("cached_exceeds_input", sa.and_(cached.is_not(None), inp.is_not(None), cached > inp)))
    numeric("cost_usd")
    return rules


def valid_rows(ix: Interactions) -> sa.ColumnElement[bool]:
    """The predicate every analyzer adds to its WHERE clause."""
    return sa.not_(sa.or_(*[bad for _, bad in reject_rules(ix)]))


@dataclass(frozen=True)
class ContractReport:
    accepted: int
    rejected: dict[str, int]  # every checked reason, zero included
    null_timestamp_rows: int | None  # table-wide; None when not checked
    columns: tuple[str, ...]  # contract columns present
    notes: tuple[str, ...] = field(default=())

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def records(self) -> list[MetricRecord]:
        out = [
            MetricRecord.of("monitoring_rows", self.accepted, status="accepted"),
            *[MetricRecord.of("monitoring_rows", n, status="rejected", reason=r) for r, n in self.rejected.items()],
        ]
        if self.null_timestamp_rows is not None:
            out.append(MetricRecord.of("monitoring_table_null_timestamp_rows", self.null_timestamp_rows))
        return out


def check_contract(
    warehouse: Warehouse, ix: Interactions, window: Window, *, check_null_timestamps: bool = True
) -> ContractReport:
    rules = reject_rules(ix)
    reason = sa.case(
        *[(bad, sa.literal_column(f"'{name}'")) for name, bad in rules], else_=sa.literal_column("'accepted'")
    ).label("g_reason")
    q = (
        sa.select(reason, sa.func.count().label("n"))
        .select_from(ix.table)
        .where(ix.in_window())
        .group_by(sa.literal_column("g_reason"))
    )
    counts: dict[str, int] = {r["g_reason"]: int(r["n"]) for r in warehouse.fetch(q, window_params(window))}
    rejected = {name: counts.get(name, 0) for name, _ in rules}
    null_ts = None
    if check_null_timestamps:
        nq = sa.select(sa.func.count()).select_from(ix.table).where(ix.req("timestamp").is_(None))
        null_ts = int(warehouse.scalar(nq))
    notes = []
    if sum(rejected.values()):
        parts = ", ".join(f"{n} {r}" for r, n in rejected.items() if n)
        notes.append(f"rejected {sum(rejected.values())} rows: {parts}")
    if null_ts:
        notes.append(f"{null_ts} rows in {ix.table.name} have a null timestamp and belong to no window")
    return ContractReport(
        accepted=counts.get("accepted", 0),
        rejected=rejected,
        null_timestamp_rows=null_ts,
        columns=tuple(ix.present),
        notes=tuple(notes),
    )


@task(name="check-contract", cache_policy=NO_CACHE)
def check_contract_task(
    warehouse: Warehouse, ix: Interactions, window: Window, check_null_timestamps: bool = True
) -> ContractReport:
    return check_contract(warehouse, ix, window, check_null_timestamps=check_null_timestamps)
