"""Backfills, concurrent runs of one window, catch-up, retries and the run artifact,
through Prefect (the session harness), on DuckDB and a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from aimon.cli import app
from aimon.errors import WindowOpen
from aimon.flows.backfill import backfill, plan_backfill
from aimon.flows.monitor import monitor_flow, monitor_window
from aimon.records import AnalyzerResult, MetricRecord
from aimon.store.metrics import Store
from aimon.tasks.orchestration.artifact import run_markdown
from aimon.tasks.registry import ANALYZERS
from aimon.windows import daily_window
from tests.conftest import DAY, PG_URL, PRICING, make_config, write_sqlalchemy
from tests.test_flow import write_config

pytestmark = pytest.mark.usefixtures("prefect_harness")

FIRST, LAST = DAY - dt.timedelta(days=2), DAY + dt.timedelta(days=1)  # the frame's four days


def figure_keys(url: str) -> list[tuple[dt.datetime, str, str, str]]:
    """Every stored figure's key and run id, duplicates kept (a duplicate is a defect)."""
    return [
        (f.window_start, f.metric, str(sorted(f.labels.items())), f.run_id)
        for f in Store(make_config(url)).figures(granularity="daily")
    ]


def latest_runs(url: str) -> dict[dt.date, str]:
    store = Store(make_config(url))
    out = {}
    for i in range((LAST - FIRST).days + 1):
        day = FIRST + dt.timedelta(days=i)
        runs = [r for r in store.runs_for(daily_window(day)) if r["status"] != "running"]
        if runs:
            out[day] = runs[-1]["status"]
    return out


@pytest.mark.slow
def test_backfill_skips_complete_windows_redoes_failed_and_all(tmp_path: Path, duck_url: str) -> None:
    cfg = write_config(tmp_path, duck_url)
    report = backfill(start=FIRST, end=DAY, config_path=cfg, concurrency=2)
    assert sorted(o.outcome for o in report.outcomes) == ["success"] * 3
    first_figures = figure_keys(duck_url)
    assert len(first_figures) == len({k[:3] for k in first_figures})  # one set per window

    # The last day fails (a column the config maps does not exist).
    bad = tmp_path / "broken.yaml"
    warehouse = {"url": duck_url, "columns": {"latency_seconds": "no_such_column"}}
    bad.write_text(yaml.safe_dump({"warehouse": warehouse, "pricing": PRICING}))
    with pytest.raises(Exception, match="no_such_column"):
        monitor_window(window_start=LAST.isoformat(), config_path=str(bad))
    assert latest_runs(duck_url) == {
        FIRST: "success",
        FIRST + dt.timedelta(days=1): "success",
        DAY: "success",
        LAST: "failed",
    }

    # missing: every window has a finished run, nothing runs; the figures are untouched.
    report = backfill(start=FIRST, end=LAST, config_path=cfg)
    assert [o.outcome for o in report.outcomes] == ["skipped"] * 4
    assert figure_keys(duck_url)[: len(first_figures)] == first_figures

    # failed: only the failed day runs.
    report = backfill(start=FIRST, end=LAST, config_path=cfg, redo="failed")
    ran = [o for o in report.outcomes if o.outcome != "skipped"]
    assert [(o.window.start.date(), o.outcome) for o in ran] == [(LAST, "success")]

    # all: every window runs again and replaces its figures: still one set each.
    report = backfill(start=FIRST, end=LAST, config_path=cfg, redo="all", order="newest", concurrency=3)
    assert sorted(o.outcome for o in report.outcomes) == ["success"] * 4
    keys = figure_keys(duck_url)
    assert len(keys) == len({k[:3] for k in keys})
    assert {k[0].date() for k in keys} == {FIRST + dt.timedelta(days=i) for i in range(4)}
    new_runs = {o.run_id for o in report.outcomes}
    assert {k[3] for k in keys} == new_runs


def test_plan_order_and_incomplete_windows(tmp_path: Path, duck_url: str) -> None:
    cfg = make_config(duck_url)
    now = dt.datetime.combine(DAY, dt.time(12))  # DAY is still open at noon
    before = DAY - dt.timedelta(days=1)
    plan = plan_backfill(cfg, FIRST, before, order="newest", now=now)
    assert [w.start.date() for w in plan.to_run] == [before, FIRST]
    plan = plan_backfill(cfg, FIRST, before, now=now)
    assert [w.start.date() for w in plan.to_run] == [FIRST, before]
    # A range into an open window is refused, naming it; --allow-partial runs it provisional.
    with pytest.raises(WindowOpen, match=rf"daily {DAY} \(UTC\).*has not ended.*--end {before}"):
        plan_backfill(cfg, FIRST, LAST, now=now)
    plan = plan_backfill(cfg, FIRST, LAST, now=now, allow_partial=True)
    assert [w.start.date() for w in plan.to_run] == [FIRST, before, DAY]
    assert [(o.window.start.date(), o.note) for o in plan.skipped] == [(LAST, "has not begun")]
    with pytest.raises(ValueError, match="before start"):
        plan_backfill(cfg, LAST, FIRST)
    with pytest.raises(ValueError, match="missing, failed, all"):
        plan_backfill(cfg, FIRST, LAST, redo="everything")


def _two_runs_at_once(cfg: str, monkeypatch) -> list:
    """Two monitor_window runs of one window in two threads. The first to start waits
    in an analyzer, holding its claim, until the other has tried to start, so the two
    overlap however Prefect schedules the threads."""
    tried = threading.Event()
    starts: list[str] = []
    original = Store.start_run

    def start_run(self, run_id, *args, **kwargs):
        try:
            return original(self, run_id, *args, **kwargs)
        finally:
            starts.append(run_id)
            if len(starts) >= 2:
                tried.set()

    def holding(ctx) -> AnalyzerResult:
        assert tried.wait(120), "the second run never tried to start"
        return AnalyzerResult("holding", (MetricRecord.of("test_holding", 1.0),))

    monkeypatch.setattr(Store, "start_run", start_run)
    with_holding = monitor_flow({**ANALYZERS, "holding": holding})
    results: list = []
    barrier = threading.Barrier(2)

    def go() -> None:
        barrier.wait()
        results.append(with_holding(window_start=DAY.isoformat(), config_path=cfg))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return results


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_two_concurrent_runs_of_one_window_make_one_run_and_one_set_of_figures(
    backend: str, tmp_path: Path, frame: pd.DataFrame, monkeypatch, request: pytest.FixtureRequest
) -> None:
    if backend == "duckdb":
        url = request.getfixturevalue("duck_url")
    else:
        url = f"{PG_URL}?options=-csearch_path%3D{request.getfixturevalue('pg_schema')}"
        write_sqlalchemy(url, frame, "interactions")
    results = _two_runs_at_once(write_config(tmp_path, url), monkeypatch)
    assert sorted(r.status for r in results) == ["skipped", "success"]
    skipped = next(r for r in results if r.status == "skipped")
    assert "being run by run" in skipped.notes[0]
    runs = Store(make_config(url)).runs_for(daily_window(DAY))
    assert [r["status"] for r in runs] == ["success"]
    keys = figure_keys(url)
    assert len(keys) == len({k[:3] for k in keys}) and {k[3] for k in keys} == {runs[0]["run_id"]}


def test_scheduled_run_catches_up_missed_windows_once(
    tmp_path: Path, duck_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_config(tmp_path, duck_url, orchestration={"catchup_windows": 2})
    # The run of LAST's schedule slot (00:30 the day after), run late after an outage.
    slot = dt.datetime.combine(LAST + dt.timedelta(days=1), dt.time(0, 30), tzinfo=dt.UTC)
    monkeypatch.setattr("aimon.flows.monitor.scheduled_time", lambda: slot)
    summary = monitor_window(config_path=cfg, scheduled=True)
    assert summary.status == "success" and summary.window == daily_window(LAST)
    # The two days before it ran first, as historical windows.
    assert latest_runs(duck_url) == {DAY - dt.timedelta(days=1): "success", DAY: "success", LAST: "success"}
    # A late duplicate of the same scheduled run (a pile-up) runs nothing again.
    again = monitor_window(config_path=cfg, scheduled=True)
    assert again.status == "skipped" and "already has a finished run" in again.notes[0]
    store = Store(make_config(duck_url))
    assert [len(store.runs_for(daily_window(d))) for d in (DAY - dt.timedelta(days=1), DAY, LAST)] == [1, 1, 1]


def test_transient_errors_are_retried_and_others_are_not(tmp_path: Path, duck_url: str) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nothing listens here once closed
    attempts = {"flaky": 0, "broken": 0}

    def flaky(ctx) -> AnalyzerResult:
        attempts["flaky"] += 1
        if attempts["flaky"] == 1:  # a real "connection refused" from the driver, once
            sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{dead}/test").connect()
        return AnalyzerResult("flaky", (MetricRecord.of("test_flaky", 1.0),))

    def broken(ctx) -> AnalyzerResult:
        attempts["broken"] += 1
        raise KeyError("a bug, not a transient error")

    cfg = write_config(tmp_path, duck_url, orchestration={"retries": 2, "retry_delay_seconds": 0})
    summary = monitor_flow({**ANALYZERS, "flaky": flaky, "broken": broken})(
        window_start=DAY.isoformat(), config_path=cfg
    )
    assert attempts == {"flaky": 2, "broken": 1}
    assert summary.status == "degraded"
    assert [o.name for o in summary.outcomes if o.error] == ["broken"]
    assert summary.value("test_flaky") == 1.0


def test_run_markdown_has_the_window_figures_rejections_and_analyzers(tmp_path: Path, duck_url: str) -> None:
    summary = monitor_window(window_start=DAY.isoformat(), config_path=write_config(tmp_path, duck_url))
    md = run_markdown(summary)
    assert f"# daily window {DAY} (UTC)" in md
    assert "| requests |" in md and "| cost USD |" in md
    assert summary.contract is not None
    rejected = {k: n for k, n in summary.contract.rejected.items() if n}
    assert rejected["negative_cost_usd"] == 1  # one of the frame's hand-made bad rows
    for reason, n in rejected.items():  # every rejection reason, with its count
        assert f"| {reason} | {n:,} |" in md
    assert "| operational | ok |" in md and "| cost | ok |" in md
    assert "## Notes" in md


def test_cli_backfill_dry_run_then_run(tmp_path: Path, duck_url: str) -> None:
    cfg = write_config(tmp_path, duck_url)
    runner = CliRunner()
    args = ["backfill", "--config", cfg, "--start", str(FIRST), "--end", str(FIRST + dt.timedelta(days=1))]
    res = runner.invoke(app, [*args, "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "2 windows would run, 0 skipped" in res.output
    assert Store(make_config(duck_url)).figures() == []
    res = runner.invoke(app, [*args, "--concurrency", "2"])
    assert res.exit_code == 0, res.output
    assert "windows by outcome" in res.output and "success" in res.output
    res = runner.invoke(app, [*args, "--redo", "bogus"])
    assert res.exit_code == 2 and "missing, failed, all" in res.output


@pytest.mark.slow
@pytest.mark.postgres
def test_analyzers_fan_out_on_a_local_dask_cluster(tmp_path: Path, frame: pd.DataFrame, pg_schema: str) -> None:
    # PostgreSQL, not DuckDB: the Dask workers are separate processes, and a DuckDB
    # file opens read-write in one process only.
    url = f"{PG_URL}?options=-csearch_path%3D{pg_schema}"
    write_sqlalchemy(url, frame, "interactions")
    threads = monitor_window(window_start=DAY.isoformat(), config_path=write_config(tmp_path, url))
    (tmp_path / "dask").mkdir()
    cfg = write_config(tmp_path / "dask", url, orchestration={"task_runner": "dask", "dask_workers": 2})

    # An analyzer that says which process ran it: the flow ships it (by value) to the
    # Dask worker processes, which shows the analyzers ran there.
    def probe(ctx: Any) -> AnalyzerResult:
        return AnalyzerResult("probe", (MetricRecord.of("test_probe_pid", float(os.getpid())),))

    on_dask = monitor_flow({**ANALYZERS, "probe": probe})(window_start=DAY.isoformat(), config_path=cfg)
    assert on_dask.status == "success"
    errors = {o.name: o.error for o in on_dask.outcomes}
    assert set(errors.values()) == {None}
    assert on_dask.value("test_probe_pid") not in (None, float(os.getpid()))
    volatile = {
        "test_probe_pid",
        "monitoring_run_duration_seconds",
        "monitoring_last_success_timestamp_seconds",
        "monitoring_run_success",
    }
    same = {(r.metric, r.labels): r.value for r in threads.records if r.metric not in volatile}
    assert {(r.metric, r.labels): r.value for r in on_dask.records if r.metric not in volatile} == same


def test_scheduled_run_without_a_window_takes_the_last_complete_one(tmp_path: Path, duck_url: str) -> None:
    from aimon.windows import last_complete_window

    cfg = write_config(tmp_path, duck_url, orchestration={"catchup_windows": 1})
    summary = monitor_window(config_path=cfg, scheduled=True)  # the schedule's time is now here
    assert summary.status == "success" and summary.window == last_complete_window("daily")
    previous = daily_window(summary.window.start.date() - dt.timedelta(days=1))
    assert [r["status"] for r in Store(make_config(duck_url)).runs_for(previous)] == ["success"]  # caught up
