"""Warehouse and store faults at open-window and begin-run: a column of the wrong type,
text timestamps, a missing warehouse file, a DuckDB file held by another process, a
store that cannot be reached. Each is one clear error (or a skip) naming what to fix."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from aimon.cli import app
from aimon.errors import ColumnTypeError, ContractError, StoreError, WindowClaimed
from aimon.store.metrics import Store
from aimon.tasks.orchestration.run import begin_run
from aimon.warehouse import Warehouse
from aimon.windows import daily_window
from tests.conftest import DAY, PRICING, make_config, write_duckdb

REPO = Path(__file__).resolve().parent.parent
WINDOW = daily_window(DAY)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rows(n: int = 4, **cols: object) -> pd.DataFrame:
    base: dict[str, object] = {
        "timestamp": pd.date_range(f"{DAY} 01:00", periods=n, freq="h"),
        "model": "gpt-4o",
        "status": "ok",
        "latency_seconds": 0.5,
    }
    return pd.DataFrame({**base, **cols})


def write_config(tmp_path: Path, url: str, **sections: object) -> Path:
    data = {"warehouse": {"url": url, "interactions_table": "interactions"}, "pricing": PRICING, **sections}
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


# -- column types ---------------------------------------------------------------------


def test_latency_stored_as_text_is_a_type_error_naming_the_column(tmp_path: Path) -> None:
    url = write_duckdb(
        tmp_path / "wh.duckdb",
        rows(latency_seconds=["0.5", "1.2", "0.3", "0.9"]).rename(columns={"latency_seconds": "duration"}),
    )
    cfg = make_config(url, warehouse={"columns": {"latency_seconds": "duration"}})
    with pytest.raises(ColumnTypeError) as err:
        Warehouse(cfg.warehouse, cfg.store).describe()
    msg = str(err.value)
    assert err.value.exit_code == 2
    assert "table 'interactions'" in msg and "column 'duration' (contract column 'latency_seconds')" in msg
    assert "VARCHAR" in msg and "expected numeric" in msg and "cast it in a view, or map another column" in msg


@pytest.mark.usefixtures("prefect_harness")
def test_run_with_a_text_latency_exits_2_with_one_line_and_no_sql(tmp_path: Path) -> None:
    url = write_duckdb(tmp_path / "wh.duckdb", rows(latency_seconds=["0.5", "x", "0.3", "0.9"]))
    res = CliRunner().invoke(app, ["run", "--config", str(write_config(tmp_path, url)), "--date", DAY.isoformat()])
    assert res.exit_code == 2, res.output
    assert "run failed:" in res.output and "'latency_seconds'" in res.output
    assert "SELECT" not in res.output and "[SQL:" not in res.output


def test_text_timestamps_on_duckdb_are_refused_with_the_cast_to_use(tmp_path: Path) -> None:
    ts = ["2026-11-10T01:00:00+02:00", "2026-11-10T01:00:00Z", "2026-11-10 03:00:00", "2026-11-10T04:00:00-05:00"]
    url = write_duckdb(tmp_path / "wh.duckdb", rows(timestamp=ts))
    cfg = make_config(url)
    with pytest.raises(ColumnTypeError, match=r"column 'timestamp' \(contract column 'timestamp'\) is VARCHAR") as err:
        Warehouse(cfg.warehouse, cfg.store).describe()
    assert "CAST(col AS TIMESTAMPTZ)" in str(err.value)


def _sqlite_text_timestamps(tmp_path: Path, values: list[str]) -> str:
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    with sa.create_engine(url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE interactions (timestamp TEXT, model TEXT, status TEXT)")
        for v in values:
            conn.exec_driver_sql("INSERT INTO interactions VALUES (?, 'gpt-4o', 'ok')", (v,))
    return url


def test_sqlite_text_timestamps_with_mixed_offsets_are_refused_naming_the_column(tmp_path: Path) -> None:
    url = _sqlite_text_timestamps(tmp_path, ["2026-11-10 01:00:00", "2026-11-10T05:00:00+02:00", "2026-11-10T06:00Z"])
    cfg = make_config(url)
    with pytest.raises(ColumnTypeError) as err:
        Warehouse(cfg.warehouse, cfg.store).describe()
    msg = str(err.value)
    assert "column 'timestamp' (contract column 'timestamp') holds 2 value(s)" in msg
    assert "naive UTC" in msg and "with a UTC offset" in msg and "datetime(timestamp)" in msg


def test_sqlite_naive_utc_text_timestamps_are_accepted(tmp_path: Path) -> None:
    url = _sqlite_text_timestamps(tmp_path, ["2026-11-10 01:00:00", "2026-11-10 02:00:00.250000"])
    cfg = make_config(url)
    assert Warehouse(cfg.warehouse, cfg.store).describe().has("timestamp", "model", "status")


# -- a missing warehouse file -----------------------------------------------------------


def test_a_missing_duckdb_warehouse_that_is_the_store_is_named_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "gone.duckdb"
    cfg = make_config(f"duckdb:///{path}")  # the default layout: one file, warehouse and store
    with pytest.raises(ContractError, match=f"the warehouse file {path} .* does not exist"):
        begin_run(Store(cfg), WINDOW, claim_ttl_seconds=600)
    with pytest.raises(ContractError, match="does not exist"):
        Warehouse(cfg.warehouse, cfg.store).describe()
    assert not path.exists()


@pytest.mark.parametrize("kind", ["duckdb", "sqlite"])
def test_a_missing_warehouse_file_opened_read_only_is_named_and_not_created(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"gone.{kind}"
    cfg = make_config(f"{kind}:///{path}", store={"url": f"sqlite:///{tmp_path / 'store.sqlite'}"})
    with pytest.raises(ContractError, match=f"the warehouse file {path} .* does not exist"):
        Warehouse(cfg.warehouse, cfg.store).describe()
    assert not path.exists()


def test_a_separate_warehouse_is_opened_read_only(tmp_path: Path) -> None:
    url = write_duckdb(tmp_path / "wh.duckdb", rows())
    cfg = make_config(url, store={"url": f"sqlite:///{tmp_path / 'store.sqlite'}"})
    wh = Warehouse(cfg.warehouse, cfg.store)
    with wh.engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="read-only"):
        conn.exec_driver_sql("CREATE TABLE x (a INT)")


# -- a DuckDB file held by another process --------------------------------------------

HOLDER = """
import sys, time
from aimon.config import parse_config
from aimon.store.metrics import Store
from aimon.tasks.orchestration.run import begin_run
from aimon.windows import daily_window
import datetime as dt
store = Store(parse_config({"warehouse": {"url": sys.argv[1]}}))
run = begin_run(store, daily_window(dt.date.fromisoformat(sys.argv[2])), claim_ttl_seconds=600)
print(run.run_id, flush=True)
time.sleep(float(sys.argv[3]))  # holds the file's lock meanwhile
"""


def hold(url: str, day: str, seconds: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, day, str(seconds)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert run_id, "the holder did not start its run"
    return proc, run_id


def stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(30)
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.mark.slow
def test_a_second_process_on_the_same_window_waits_then_is_skipped_naming_the_holder(tmp_path: Path) -> None:
    url = write_duckdb(tmp_path / "wh.duckdb", rows())
    proc, run_id = hold(url, DAY.isoformat(), 60)
    try:
        started = time.monotonic()
        with pytest.raises(WindowClaimed) as err:
            begin_run(Store(make_config(url, store={"lock_timeout_seconds": 2})), WINDOW, claim_ttl_seconds=600)
        assert time.monotonic() - started >= 2  # it waited for the lock first
        msg = str(err.value)
        assert f"PID {proc.pid}" in msg and run_id in msg and "skipped" in msg
        assert "store.lock_timeout_seconds" in msg
    finally:
        stop(proc)


@pytest.mark.slow
def test_another_window_waits_for_the_lock_and_runs_then(tmp_path: Path) -> None:
    url = write_duckdb(tmp_path / "wh.duckdb", rows())
    proc, first = hold(url, (DAY - pd.Timedelta(days=1)).isoformat(), 3)
    try:
        store = Store(make_config(url, store={"lock_timeout_seconds": 60}))
        started = time.monotonic()
        run = begin_run(store, WINDOW, claim_ttl_seconds=600)  # queues behind the holder
        # The holder keeps the lock ~3 s after its run started, then exits: this run
        # waited for it (the lock goes with the holder's exit, a moment before the
        # process is reaped, so wait for that rather than poll).
        assert time.monotonic() - started > 1.5
        assert proc.wait(timeout=30) == 0
        assert [r["run_id"] for r in store.runs_for(WINDOW)] == [run.run_id]
        assert first not in {r["run_id"] for r in store.runs_for(WINDOW)}
    finally:
        stop(proc)


@pytest.mark.slow
def test_another_window_still_locked_past_the_wait_fails_naming_the_holder(tmp_path: Path) -> None:
    url = write_duckdb(tmp_path / "wh.duckdb", rows())
    day_before = (DAY - pd.Timedelta(days=1)).isoformat()
    proc, first = hold(url, day_before, 60)
    try:
        with pytest.raises(StoreError) as err:
            begin_run(Store(make_config(url, store={"lock_timeout_seconds": 1})), WINDOW, claim_ttl_seconds=600)
        assert not isinstance(err.value, WindowClaimed)  # that window still needs a run: not a skip
        msg = str(err.value)
        assert f"PID {proc.pid}" in msg and first in msg and f"daily {day_before}" in msg
    finally:
        stop(proc)


# -- a store that cannot be reached --------------------------------------------------------


def test_an_unreachable_postgresql_store_is_a_store_error_with_the_password_masked(tmp_path: Path) -> None:
    url = write_duckdb(tmp_path / "wh.duckdb", rows())
    store_url = f"postgresql+psycopg://aimon:s3cret@127.0.0.1:{free_port()}/test"
    with pytest.raises(StoreError) as err:
        begin_run(Store(make_config(url, store={"url": store_url})), WINDOW, claim_ttl_seconds=600)
    msg = str(err.value)
    assert "postgresql+psycopg://aimon:***@127.0.0.1" in msg and "s3cret" not in msg
    assert "[SQL:" not in msg and "sqlalche.me" not in msg


@pytest.mark.usefixtures("prefect_harness")
def test_run_against_an_unreachable_store_exits_1_with_one_run_failed_line(tmp_path: Path) -> None:
    url = write_duckdb(tmp_path / "wh.duckdb", rows())
    store_url = f"postgresql+psycopg://aimon:s3cret@127.0.0.1:{free_port()}/test"
    cfg = write_config(tmp_path, url, store={"url": store_url})
    res = CliRunner().invoke(app, ["run", "--config", str(cfg), "--date", DAY.isoformat()])
    assert res.exit_code == 1, res.output
    failed = [line for line in res.output.splitlines() if line.startswith("run failed:")]
    assert len(failed) == 1 and "aimon:***@127.0.0.1" in failed[0]
    assert "s3cret" not in res.output
