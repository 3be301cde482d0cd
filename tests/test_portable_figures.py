"""The same rows give the same figures on every warehouse, sampled ones included.

Three days of the demo's interactions and feedback (every analysis: operational, cost,
drift with embeddings, quality, A/B) are loaded into DuckDB, SQLite and a real
PostgreSQL, monitored day by day, and every stored figure of the last day must be equal
(1e-9 relative) across the three. The embedding cap is set so the warehouse-side hash
pre-sample keeps about a third of the embedding rows: that pre-sample once hashed with
each engine's own hash function (DuckDB's hash, PostgreSQL's hashtextextended) and gave
embedding drift figures that depended on where the rows lived.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
import yaml

from aimon.demo import seed_duckdb
from aimon.flows.monitor import monitor_window
from aimon.store.metrics import Store
from aimon.windows import daily_window
from tests.conftest import PG_URL, make_config, write_duckdb, write_sqlalchemy

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.postgres, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
END = dt.date(2026, 11, 20)
DAYS = 3
ROWS = 3000
CAP = 250  # 4 x 250 of ~3,000 embedding rows a day: a hash pre-sample of ~1/3
# Figures about the run itself, not the rows.
RUN_FIGURES = {"monitoring_run_duration_seconds", "monitoring_last_success_timestamp_seconds"}


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """The demo's tables as plain columns every warehouse stores alike (the embedding
    as JSON text, which the contract parses the same on each)."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    seed_duckdb(path, days=DAYS, rows_per_day=ROWS, end=END)
    con = duckdb.connect(str(path), read_only=True)
    try:
        frames = {t: con.sql(f"SELECT * FROM {t} ORDER BY request_id").df() for t in ("interactions", "feedback")}
    finally:
        con.close()
    ix = frames["interactions"]
    ix["embedding"] = [None if e is None else json.dumps([float(x) for x in e]) for e in ix["embedding"]]
    return frames


def write_config(tmp: Path, url: str) -> str:
    data: dict[str, Any] = yaml.safe_load((REPO / "configs" / "monitoring.yaml").read_text())
    data["warehouse"] = {**data["warehouse"], "url": url}
    data.pop("store", None)  # the figures in the warehouse's own database
    data["drift"]["embeddings"]["cap"] = CAP
    data["alerts"].pop("channels", None)
    path = tmp / "monitoring.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def figures(url: str) -> dict[tuple[str, str], float]:
    w = daily_window(END)
    found = Store(make_config(url)).figures(granularity="daily", start_from=w.start, before=w.end)
    return {(f.metric, json.dumps(f.labels, sort_keys=True)): f.value for f in found if f.metric not in RUN_FIGURES}


def test_one_window_gives_every_figure_equal_on_duckdb_sqlite_and_postgresql(
    tmp_path: Path, tables: dict[str, pd.DataFrame], pg_schema: str
) -> None:
    urls = {
        "duckdb": write_duckdb(tmp_path / "wh.duckdb", tables["interactions"]),
        "sqlite": f"sqlite:///{tmp_path / 'wh.sqlite'}",
        "postgresql": f"{PG_URL}?options=-csearch_path%3D{pg_schema}",
    }
    write_duckdb(tmp_path / "wh.duckdb", tables["feedback"], "feedback")
    for name in ("sqlite", "postgresql"):
        for table, df in tables.items():
            write_sqlalchemy(urls[name], df, table)
    results = {}
    for name, url in urls.items():
        (tmp_path / name).mkdir()
        config = write_config(tmp_path / name, url)
        for offset in range(DAYS - 1, -1, -1):
            day = END - dt.timedelta(days=offset)
            summary = monitor_window(granularity="daily", window_start=day.isoformat(), config_path=config)
            assert summary.status == "success", (name, day, summary.outcomes)
        results[name] = figures(url)
    base = results["duckdb"]
    assert any(m == "embedding_drift_score" for m, _ in base), "the window must have embedding drift figures"
    assert len(base) > 150
    for name in ("sqlite", "postgresql"):
        other = results[name]
        assert set(other) == set(base), (name, sorted(set(other) ^ set(base))[:10])
        differ = {
            k: (base[k], other[k])
            for k in base
            if not (
                (math.isnan(base[k]) and math.isnan(other[k]))
                or math.isclose(base[k], other[k], rel_tol=1e-9, abs_tol=1e-12)
            )
        }
        assert not differ, (name, len(differ), dict(list(differ.items())[:10]))
