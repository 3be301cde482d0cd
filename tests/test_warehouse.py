"""Bulk reads as Arrow return what a plain SQLAlchemy fetch returns, on every engine."""

from __future__ import annotations

import datetime as dt

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
