"""Shared fixtures: a test frame of interactions, warehouses holding it (DuckDB,
SQLite, a real PostgreSQL), configs pointing at them, and one Prefect harness."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Prefect reads its settings at import: keep it quiet, offline and out of ~/.prefect.
os.environ.setdefault("AIMON_HOME", tempfile.mkdtemp(prefix="aimon-test-home-"))
from aimon.env import configure_prefect

configure_prefect()


def _check_link_tree() -> None:
    """The strict editable install (`make install`) is a tree of links to the source
    files, made at install time: a module added since is missing from it, and its
    import would fail with a bare ModuleNotFoundError. Say what to do instead."""
    repo = Path(__file__).resolve().parent.parent
    trees = list((repo / "build").glob("__editable__.aimon-*/aimon"))
    if not trees:
        return  # an installed wheel, or another kind of install: nothing to check
    mapped = {"aimon": "", "flows": "flows/", "tasks": "tasks/"}
    missing = [
        f"{folder}/{path.relative_to(repo / folder).as_posix()}"
        for folder, prefix in mapped.items()
        for path in (repo / folder).rglob("*.py")
        if "__pycache__" not in path.parts
        and not (trees[0] / f"{prefix}{path.relative_to(repo / folder).as_posix()}").exists()
    ]
    if missing:
        pytest.exit(f"the editable install does not know {', '.join(missing[:5])}: run `make link`", returncode=4)


_check_link_tree()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from aimon.config import Config, parse_config  # noqa: E402
from aimon.demo import generate_day  # noqa: E402
from tests import promstack  # noqa: E402
from tests.servers import SlackServer  # noqa: E402

PG_URL = os.environ.get("AIMON_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DAY = dt.date(2026, 11, 10)  # the window the tests monitor (UTC day)

PRICING = [
    {"model": "gpt-4o", "input_per_1m": 5.0, "output_per_1m": 15.0, "effective_from": "2024-05-13"},
    {
        "model": "gpt-4o",
        "input_per_1m": 2.5,
        "output_per_1m": 10.0,
        "cached_input_per_1m": 1.25,
        "effective_from": "2024-08-06",
    },
    {"model": "gpt-4o-mini", "input_per_1m": 0.15, "output_per_1m": 0.6, "effective_from": "2024-07-18"},
    {
        "model": "claude-3-5-sonnet",
        "input_per_1m": 3.0,
        "output_per_1m": 15.0,
        "cached_input_per_1m": 0.3,
        "effective_from": "2024-06-20",
    },
    # llama-3-70b has no price: its unlogged requests must be counted as unpriced.
]


def make_frame(rows_per_day: int = 1500, seed: int = 3) -> pd.DataFrame:
    """Two days before DAY, DAY itself and the day after, plus rows that break the
    contract and edge cases (unknown and oddly cased statuses, null optional values)."""
    rng = np.random.default_rng(seed)
    days = []
    for offset, day in (
        (3, DAY - dt.timedelta(days=2)),
        (2, DAY - dt.timedelta(days=1)),
        (0, DAY),
        (1, DAY + dt.timedelta(days=1)),
    ):
        t = generate_day(day, rows_per_day, rng, day_offset=offset, row_offset=0)
        days.append(t.drop_columns(["embedding"]).to_pandas())
    df = pd.concat(days, ignore_index=True)
    df["request_id"] = [f"r{i}" for i in range(len(df))]
    ts = pd.Timestamp(DAY) + pd.Timedelta(hours=6)
    odd = pd.DataFrame(
        [
            {"timestamp": ts, "model": None, "status": "ok", "latency_seconds": 1.0},
            {"timestamp": ts, "model": "gpt-4o", "status": None, "latency_seconds": 1.0},
            {"timestamp": ts, "model": "gpt-4o", "status": "ok", "latency_seconds": -0.5},
            {"timestamp": ts, "model": "gpt-4o", "status": "ok", "input_tokens": -3, "output_tokens": 10},
            {"timestamp": ts, "model": "gpt-4o", "status": "ok", "input_tokens": 10, "cached_input_tokens": 50},
            {"timestamp": ts, "model": "gpt-4o", "status": "ok", "cost_usd": -1.0},
            {"timestamp": None, "model": "gpt-4o", "status": "ok"},
            {"timestamp": ts, "model": "gpt-4o", "status": "weird_new_error", "latency_seconds": 2.0},
            {"timestamp": ts, "model": "gpt-4o", "status": " Timeout ", "latency_seconds": 30.0},
            {"timestamp": ts, "model": "gpt-4o", "status": "OK", "endpoint": None, "latency_seconds": None},
            {
                "timestamp": ts,
                "model": "gpt-4o",
                "status": "ok",
                "endpoint": "chat",
                "input_tokens": None,
                "output_tokens": None,
            },
            # The window is half-open: end excluded, start included.
            {
                "timestamp": pd.Timestamp(DAY + dt.timedelta(days=1)),
                "model": "gpt-4o",
                "status": "ok",
                "endpoint": "chat",
            },
            {
                "timestamp": pd.Timestamp(DAY),
                "model": "gpt-4o",
                "status": "ok",
                "endpoint": "chat",
                "latency_seconds": 0.1,
            },
        ]
    )
    odd["request_id"] = [f"odd{i}" for i in range(len(odd))]
    df = pd.concat([df, odd], ignore_index=True)
    for c in ("input_tokens", "output_tokens", "cached_input_tokens"):
        df[c] = df[c].astype("Int64")
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    return df


@pytest.fixture(scope="session")
def frame() -> pd.DataFrame:
    return make_frame()


def write_duckdb(path: Path, df: pd.DataFrame, table: str = "interactions") -> str:
    import duckdb

    con = duckdb.connect(str(path))
    try:
        con.register("_df", df)
        con.execute(f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM _df')
    finally:
        con.close()
    return f"duckdb:///{path}"


def write_sqlalchemy(url: str, df: pd.DataFrame, table: str, schema: str | None = None) -> None:
    engine = sa.create_engine(url)
    try:
        df.to_sql(table, engine, schema=schema, index=False, if_exists="replace", chunksize=2000, method="multi")
    finally:
        engine.dispose()


def make_config(url: str, **overrides: Any) -> Config:
    data: dict[str, Any] = {
        "warehouse": {"url": url, "interactions_table": "interactions"},
        "pricing": PRICING,
        "budgets": [{"scope": "total", "period": "month", "usd": 1000}, {"scope": "total", "period": "day", "usd": 50}],
    }
    for key, value in overrides.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return parse_config(data, source="<test>")


@pytest.fixture
def duck_url(tmp_path: Path, frame: pd.DataFrame) -> str:
    return write_duckdb(tmp_path / "wh.duckdb", frame)


@pytest.fixture
def sqlite_url(tmp_path: Path, frame: pd.DataFrame) -> str:
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    write_sqlalchemy(url, frame, "interactions")
    return url


def pg_available() -> bool:
    try:
        engine = sa.create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A throwaway schema in the real PostgreSQL at 127.0.0.1:5432 (database test)."""
    if not pg_available():
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_URL}: start it with "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
    schema = f"aimon_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackServer]:
    """A local Slack-shaped server; configs name its webhook by AIMON_TEST_SLACK_WEBHOOK."""
    server = SlackServer().start()
    monkeypatch.setenv("AIMON_TEST_SLACK_WEBHOOK", server.webhook_url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[promstack.Server]:
    """A real Pushgateway on loopback (Debian's prometheus-pushgateway)."""
    server = promstack.start_pushgateway(tmp_path)
    try:
        yield server
    finally:
        server.stop()
