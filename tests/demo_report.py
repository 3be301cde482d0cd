"""The demo's report, built as a user gets it: demo days seeded into a DuckDB file, each day
monitored by the `monitor_window` flow, then `aimon report --output DIR`. Shared by
tests/test_report_browser.py and bench/screenshots.py; the caller provides Prefect (the
`prefect_harness` fixture, or `prefect_test_harness` in the script)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml
from typer.testing import CliRunner

from aimon.cli import app
from aimon.demo import seed_duckdb
from aimon.flows.monitor import monitor_window

REPO = Path(__file__).resolve().parent.parent
# A fixed last day (in the past), so the same seed gives the same report: that day has
# the latency, cost, drift, quality and unpriced-model incidents; END-2 the error burst.
END = dt.date(2026, 11, 20)


def demo_config(workdir: Path) -> Path:
    """The shipped config (pricing, budgets, rules, the prompt-v2 experiment, drift) on a
    warehouse in `workdir`; the store is the same file, as in the demo."""
    data = yaml.safe_load((REPO / "configs" / "monitoring.yaml").read_text())
    data["warehouse"] = {**data["warehouse"], "url": f"duckdb:///{workdir / 'wh.duckdb'}"}
    path = workdir / "monitoring.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def days_ending(end: dt.date, days: int) -> list[dt.date]:
    return [end - dt.timedelta(days=o) for o in range(days - 1, -1, -1)]


def build_demo_report(
    workdir: Path, *, days: int = 6, rows_per_day: int = 4000, seed: int = 7, end: dt.date = END
) -> Path:
    """Seed, monitor every day, build the report; returns the report's folder."""
    workdir.mkdir(parents=True, exist_ok=True)
    seed_duckdb(workdir / "wh.duckdb", days=days, rows_per_day=rows_per_day, seed=seed, end=end)
    cfg = demo_config(workdir)
    for day in days_ending(end, days):
        monitor_window(granularity="daily", window_start=day.isoformat(), config_path=str(cfg), notify=False)
    out = workdir / "report"
    res = CliRunner().invoke(app, ["report", "--config", str(cfg), "--output", str(out)])
    if res.exit_code != 0:
        raise RuntimeError(f"aimon report exited {res.exit_code}:\n{res.output}")
    return out
