"""The aimon CLI: exit status, messages, and the demo from a clean directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aimon.cli import app
from tests.conftest import DAY, PRICING

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def write_config(tmp_path: Path, url: str, **warehouse) -> Path:
    data = {"warehouse": {"url": url, "interactions_table": "interactions", **warehouse}, "pricing": PRICING}
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def test_config_check_ok(tmp_path: Path, duck_url: str) -> None:
    res = runner.invoke(app, ["config", "check", "--config", str(write_config(tmp_path, duck_url))])
    assert res.exit_code == 0, res.output
    assert "maps" in res.output and "store: table monitoring_metrics" in res.output


def test_config_check_names_a_mapped_column_that_does_not_exist(tmp_path: Path, duck_url: str) -> None:
    cfg = write_config(tmp_path, duck_url, columns={"latency_seconds": "duration_ms"})
    res = runner.invoke(app, ["config", "check", "--config", str(cfg)])
    assert res.exit_code == 1
    assert "warehouse.columns.latency_seconds maps to column 'duration_ms'" in res.output


def test_config_typo_exits_2_naming_the_key(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("warehouse:\n  url: duckdb:///x.duckdb\n  colums: {}\n")
    res = runner.invoke(app, ["run", "--config", str(p)])
    assert res.exit_code == 2
    assert "unknown key 'warehouse.colums'" in res.output


def test_bad_usage_exits_2(tmp_path: Path, duck_url: str) -> None:
    cfg = str(write_config(tmp_path, duck_url))
    assert runner.invoke(app, ["run", "--config", cfg, "--date", "10/11/2026"]).exit_code == 2
    assert runner.invoke(app, ["run", "--config", cfg, "--granularity", "weekly"]).exit_code == 2


@pytest.mark.usefixtures("prefect_harness")
def test_run_prints_the_summary_and_exits_0(tmp_path: Path, duck_url: str) -> None:
    res = runner.invoke(app, ["run", "--config", str(write_config(tmp_path, duck_url)), "--date", DAY.isoformat()])
    assert res.exit_code == 0, res.output
    assert "success" in res.output
    assert "rejected" in res.output and "null_model" in res.output
    assert "llama-3-70b" in res.output and "no price" in res.output
    assert "figures stored in table monitoring_metrics" in res.output


@pytest.mark.usefixtures("prefect_harness")
def test_run_against_a_missing_table_exits_2_and_says_what_to_do(tmp_path: Path, duck_url: str) -> None:
    p = write_config(tmp_path, duck_url)
    p.write_text(p.read_text().replace("interactions_table: interactions", "interactions_table: events"))
    res = runner.invoke(app, ["run", "--config", str(p), "--date", DAY.isoformat()])
    assert res.exit_code == 2
    assert "table 'events' not found" in res.output and "warehouse.interactions_table" in res.output


@pytest.mark.slow
def test_demo_from_a_clean_directory(tmp_path: Path) -> None:
    """`aimon demo` in a fresh process: ephemeral Prefect, seeding, every day monitored."""
    env = {**os.environ, "AIMON_HOME": str(tmp_path / ".aimon"), "COLUMNS": "160"}
    env.pop("PREFECT_HOME", None)
    env.pop("PREFECT_API_URL", None)
    cmd = [
        sys.executable,
        "-m",
        "aimon.cli",
        "demo",
        "--days",
        "5",
        "--rows-per-day",
        "3000",
        "--config",
        str(REPO / "configs/monitoring.yaml"),
    ]
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout
    assert "seeded .aimon/warehouse.duckdb" in out
    assert "latest window" in out and "success" in out
    assert "mistral-large" in out and "no price" in out  # the unpriced-model incident
    assert "what it found" in out
    assert "experiment prompt-v2:" in out  # the demo's A/B experiment and its status
    # The latency spike (gpt-4o p95) and the cost spike stand out against history.
    found = out.split("what it found", 1)[1]
    assert "llm_latency_seconds{endpoint=chat, model=gpt-4o, quantile=0.95}" in found
    assert "llm_tokens{endpoint=summarize, model=claude-3-5-sonnet, type=input}" in found
    assert "llm_cost_usd{endpoint=summarize, model=claude-3-5-sonnet}" in found
    assert (tmp_path / ".aimon" / "warehouse.duckdb").is_file()
