"""The data contract checks values, not just signs: NaN, +-inf and non-numbers in the
numeric columns are rejected and counted on DuckDB, SQLite and a real PostgreSQL, and
the figures the analyzers store hold only the remaining rows (tests/reference.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from aimon.store.metrics import Store
from aimon.tasks.contract import check_contract
from aimon.tasks.cost import analyze_cost
from aimon.tasks.operational import analyze_operational
from aimon.tasks.orchestration.run import open_window
from aimon.windows import daily_window
from tests import reference
from tests.conftest import DAY, PG_URL, PRICING, make_config, write_duckdb, write_sqlalchemy

NAN, INF = float("nan"), float("inf")
TS = pd.Timestamp(DAY) + pd.Timedelta(hours=7)
BAD_ROWS: list[dict[str, Any]] = [
    {"request_id": "bad-nan-latency", "latency_seconds": NAN, "input_tokens": 10.0, "output_tokens": 5.0},
    {"request_id": "bad-inf-latency", "latency_seconds": INF, "input_tokens": 10.0, "output_tokens": 5.0},
    {"request_id": "bad-neg-inf-cost", "latency_seconds": 1.0, "cost_usd": -INF},
    {"request_id": "bad-nan-tokens", "latency_seconds": 1.0, "input_tokens": NAN, "output_tokens": 5.0},
    {"request_id": "bad-inf-tokens", "latency_seconds": 1.0, "input_tokens": 10.0, "output_tokens": INF},
]
# SQLite's dynamic typing: a REAL or INTEGER column holds whatever is inserted.
SQLITE_TEXT_ROWS: list[dict[str, Any]] = [
    {"request_id": "bad-text-latency", "latency_seconds": "slow", "input_tokens": 10, "output_tokens": 5},
    {"request_id": "bad-text-cost", "latency_seconds": 1.0, "cost_usd": "n/a"},
    {"request_id": "bad-text-tokens", "latency_seconds": 1.0, "input_tokens": "ten", "output_tokens": 5},
]


def insert(url: str, rows: list[dict[str, Any]], float_tokens: bool) -> None:
    """The rows through the driver's own float binding (pandas would turn NaN into NULL);
    token columns made DOUBLE first where asked, so they can hold NaN and inf."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if float_tokens:
                for c in ("input_tokens", "output_tokens", "cached_input_tokens"):
                    kind = "DOUBLE" if engine.dialect.name == "duckdb" else "double precision"
                    conn.execute(sa.text(f"ALTER TABLE interactions ALTER COLUMN {c} TYPE {kind}"))
            for r in rows:
                row = {"timestamp": TS.to_pydatetime(), "model": "gpt-4o", "status": "ok", "endpoint": "chat", **r}
                cols = ", ".join(row)
                conn.execute(
                    sa.text(f"INSERT INTO interactions ({cols}) VALUES ({', '.join(':' + c for c in row)})"), row
                )
    finally:
        engine.dispose()


@pytest.fixture(params=["duckdb", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def bad_warehouse(request: pytest.FixtureRequest, tmp_path: Path, frame: pd.DataFrame) -> tuple[str, str]:
    backend = request.param
    if backend == "duckdb":
        url = write_duckdb(tmp_path / "wh.duckdb", frame)
    elif backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
        write_sqlalchemy(url, frame, "interactions")
    else:
        url = f"{PG_URL}?options=-csearch_path%3D{request.getfixturevalue('pg_schema')}"
        write_sqlalchemy(url, frame, "interactions")
    insert(url, BAD_ROWS + (SQLITE_TEXT_ROWS if backend == "sqlite" else []), float_tokens=backend != "sqlite")
    return backend, url


def accepted_bad_rows(backend: str) -> pd.DataFrame:
    """The bad rows as the engine holds them: SQLite stores a NaN as NULL (a missing
    value, accepted), the others keep NaN (rejected)."""
    if backend != "sqlite":
        return pd.DataFrame()
    rows = [
        {"timestamp": TS, "model": "gpt-4o", "status": "ok", "endpoint": "chat", **r}
        for r in BAD_ROWS
        if any(isinstance(v, float) and math.isnan(v) for v in r.values())
    ]
    return pd.DataFrame(rows)


def test_nonfinite_and_non_numeric_values_are_rejected_and_counted(
    bad_warehouse: tuple[str, str], frame: pd.DataFrame
) -> None:
    backend, url = bad_warehouse
    cfg = make_config(url)
    window = daily_window(DAY)
    ctx = open_window(cfg, window, Store(cfg))
    report = check_contract(ctx.warehouse, ctx.interactions, window)
    nan_rejected = 0 if backend == "sqlite" else 1  # SQLite: NaN is NULL
    assert report.rejected["nonfinite_latency_seconds"] == 1 + nan_rejected
    assert report.rejected["nonfinite_cost_usd"] == 1
    assert report.rejected["nonfinite_input_tokens"] == nan_rejected
    assert report.rejected["nonfinite_output_tokens"] == 1
    text = 1 if backend == "sqlite" else 0
    assert report.rejected["non_numeric_latency_seconds"] == text
    assert report.rejected["non_numeric_cost_usd"] == text
    assert report.rejected["non_numeric_input_tokens"] == text
    # -inf is non-finite, not negative; the old reasons keep their names and order.
    assert report.rejected["negative_cost_usd"] == 1  # the test frame's own -1.0
    reasons = list(report.rejected)
    old = [r for r in reasons if r.startswith(("null_", "negative_", "cached_"))]
    assert old == [
        "null_model",
        "null_status",
        "negative_latency_seconds",
        "negative_input_tokens",
        "negative_output_tokens",
        "negative_cached_input_tokens",
        "cached_exceeds_input",
        "negative_cost_usd",
    ]
    assert reasons.index("nonfinite_cost_usd") < reasons.index("negative_cost_usd")

    # Every analyzer reads through the same predicate: the figures are those of the remaining rows.
    expected = pd.concat([frame, accepted_bad_rows(backend)], ignore_index=True)
    rows = reference.in_window(expected, window.start, window.end)
    assert report.accepted == len(reference.accepted(rows))
    op = {(r.metric, r.labels_json): r.value for r in analyze_operational(ctx).records}
    assert all(math.isfinite(v) for v in op.values())
    reference.compare(op, reference.operational(expected, window.start, window.end))
    p99 = op[reference.key("llm_latency_seconds", model="gpt-4o", endpoint="chat", quantile=0.99)]
    assert math.isfinite(p99)
    cost = {(r.metric, r.labels_json): r.value for r in analyze_cost(ctx).records}
    assert all(math.isfinite(v) for v in cost.values())
    want = reference.cost(expected, window.start, window.end, PRICING)
    reference.compare({k: v for k, v in cost.items() if k in want}, want)
