"""Bulk reads as Arrow return what a plain SQLAlchemy fetch returns, on every engine."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from aimon.config import parse_config
from aimon.warehouse import Warehouse
from tests.conftest import DAY, PG_URL, write_sqlalchemy


def _select(wh: Warehouse) -> sa.Select:
    ix = wh.describe()
    return (
        sa.select(ix.req("model"), ix.req("latency_seconds"), ix.req("timestamp"))
        .select_from(ix.table)
        .where(ix.in_window(), ix.req("status") == "ok")
        .order_by(ix.req("timestamp"), ix.req("model"))
    )


def _check(url: str) -> None:
    wh = Warehouse(parse_config({"warehouse": {"url": url}}).warehouse)
    stmt = _select(wh)
    params = {"window_start": dt.datetime.combine(DAY, dt.time()), "window_end": dt.datetime.combine(DAY, dt.time(12))}
    arrow = wh.fetch_arrow(stmt, params).to_pandas()
    with wh.engine.connect() as conn:
        rows = pd.DataFrame(conn.execute(stmt, params).mappings().all())
    assert len(arrow) == len(rows) > 100
    pd.testing.assert_series_equal(arrow["latency_seconds"], rows["latency_seconds"], check_names=False)
    assert list(arrow["model"]) == list(rows["model"])
    assert (pd.to_datetime(arrow["timestamp"]).to_numpy() == pd.to_datetime(rows["timestamp"]).to_numpy()).all()


def test_fetch_arrow_duckdb(duck_url: str) -> None:
    _check(duck_url)


def test_fetch_arrow_sqlite(sqlite_url: str) -> None:
    _check(sqlite_url)


@pytest.mark.postgres
def test_fetch_arrow_postgres_over_adbc(pg_schema: str, frame: pd.DataFrame) -> None:
    url = f"{PG_URL}?options=-csearch_path%3D{pg_schema}"
    write_sqlalchemy(url, frame, "interactions")
    _check(url)


def test_an_embedded_duckdb_caches_at_most_1gb_unless_the_url_says(tmp_path: Path) -> None:
    """DuckDB's buffer cache lives in this process and defaults to 80% of RAM: aimon caps
    it (a 10M-row day's peak RSS went from 3.7 to 2.3 GiB); the URL's own setting wins."""
    from aimon.engines import get_engine

    def limit(url: str) -> str:
        with get_engine(url).connect() as conn:
            return str(conn.execute(sa.text("SELECT current_setting('memory_limit')")).scalar())

    assert limit(f"duckdb:///{tmp_path / 'a.duckdb'}") == "953.6 MiB"  # 1GB, as DuckDB prints it
    assert limit(f"duckdb:///{tmp_path / 'b.duckdb'}?memory_limit=3GB") == "2.7 GiB"
