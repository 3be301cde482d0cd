"""`--format json` on run, alerts list/history, config check and backfill: stdout holds
one JSON document and nothing else, with the keys docs/json.md lists, agreeing with the
text output and the store; the exit status is the text one's."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from aimon.cli import app
from aimon.cli.common import jsonable
from aimon.config import load_config
from aimon.records import labels_json
from aimon.store.alerts import AlertStore
from aimon.store.metrics import Store
from aimon.tasks.registry import ANALYZERS
from tests.conftest import DAY, PRICING, write_duckdb
from tests.servers import SlackServer
from tests.test_cli_failures import assert_one_failure_line, check_lines, clean_env

runner = CliRunner()
WEBHOOK_ENV = "AIMON_TEST_JSON_SLACK_WEBHOOK"
RUN_KEYS = {
    "window",
    "status",
    "provisional",
    "live",
    "run_id",
    "duration_seconds",
    "error",
    "rows",
    "figures",
    "analyzers",
    "alerts",
    "recommendations",
    "notes",
    "stored_in",
}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def write_config(tmp_path: Path, frame: pd.DataFrame, **sections: Any) -> Path:
    url = write_duckdb(tmp_path / "wh.duckdb", frame)
    data = {
        "warehouse": {"url": url, "interactions_table": "interactions"},
        "store": {"url": f"duckdb:///{tmp_path / 'store.duckdb'}"},
        "pricing": PRICING,
        **sections,
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def alerting(webhook_env: str = WEBHOOK_ENV) -> dict[str, Any]:
    """A rule that fires on the test frame (it has errors) and a Slack route for it."""
    return {
        "channels": {"slack": {"type": "slack", "webhook_url_env": webhook_env, "max_retries": 1}},
        "routes": [{"name": "default", "channels": ["slack"]}],
        "rules": [
            {
                "name": "AnyErrors",
                "metric": "llm_error_rate",
                "labels": {"model": "__all__", "endpoint": "__all__"},
                "op": ">",
                "threshold": 0.0,
                "severity": "warning",
            }
        ],
        "retry_backoff_seconds": 0.05,
    }


def doc(res: Any) -> dict[str, Any]:
    """The one document on stdout (json.loads fails on anything before or after it)."""
    return json.loads(res.stdout)


def iso(v: dt.datetime) -> str:
    return v.replace(tzinfo=None).isoformat() + "Z"


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackServer]:
    server = SlackServer().start()
    monkeypatch.setenv(WEBHOOK_ENV, server.webhook_url)
    try:
        yield server
    finally:
        server.stop()


def test_format_yaml_is_a_usage_error(tmp_path: Path) -> None:
    cfg = str(tmp_path / "none.yaml")
    for args in (
        ["run"],
        ["alerts", "list"],
        ["alerts", "history"],
        ["alerts", "history", "--windows"],
        ["config", "check"],
        ["backfill", "--start", "2026-11-01", "--end", "2026-11-02", "--dry-run"],
    ):
        res = runner.invoke(app, [*args, "--config", cfg, "--format", "yaml"])
        assert res.exit_code == 2, (args, res.output)
        assert res.stdout == ""
        assert res.stderr.startswith("run failed: Invalid value for '--format'") and "'text', 'json'" in res.stderr


def test_a_config_error_is_a_failed_document_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("warehouse:\n  url: duckdb:///x.duckdb\n  colums: {}\n")
    for args in (["run"], ["alerts", "list"], ["config", "check"]):
        res = runner.invoke(app, [*args, "--config", str(bad), "--format", "json"])
        assert res.exit_code == 2, res.output
        got = doc(res)
        assert got["status"] == "failed" and "unknown key 'warehouse.colums'" in got["error"]
        assert res.stderr.startswith("run failed: config error")


@pytest.mark.usefixtures("prefect_harness")
def test_run_alerts_and_backfill_documents_agree_with_the_text_and_the_store(
    tmp_path: Path, frame: pd.DataFrame, slack: SlackServer
) -> None:
    cfg_path = write_config(tmp_path, frame, alerts=alerting())
    cfg = load_config(cfg_path)
    base = ["--config", str(cfg_path)]
    text = runner.invoke(app, ["run", *base, "--date", DAY.isoformat(), "--no-notify"])
    assert text.exit_code == 0, text.output

    res = runner.invoke(app, ["run", *base, "--date", DAY.isoformat(), "--notify", "--format", "json"])
    assert res.exit_code == 0, res.output
    run = doc(res)
    assert set(run) == RUN_KEYS
    assert run["status"] == "success" and run["run_id"]
    w = run["window"]
    assert w == {
        "start": f"{DAY}T00:00:00Z",
        "end": f"{DAY + dt.timedelta(days=1)}T00:00:00Z",
        "granularity": "daily",
        "label": f"{DAY} (UTC)",
        "timezone": "UTC",
    }
    rows = run["rows"]
    assert f"rows: {rows['accepted']:,} accepted, {rows['rejected_total']:,} rejected" in text.stdout
    assert rows["rejected"]["null_model"] > 0 and sum(rows["rejected"].values()) == rows["rejected_total"]
    # Every figure, as stored (the JSON run replaced the text run's figures).
    start = dt.datetime.fromisoformat(w["start"]).replace(tzinfo=None)
    stored = Store(cfg).figures(granularity="daily", start_from=start, before=start + dt.timedelta(days=1))
    assert {f.run_id for f in stored} == {run["run_id"]}
    assert sorted((f["metric"], labels_json(f["labels"]), f["value"]) for f in run["figures"]) == sorted(
        (f.metric, labels_json(f.labels), f.value) for f in stored
    )
    assert {a["name"]: a["status"] for a in run["analyzers"]} == {n: "ok" for n in ANALYZERS}  # every registered one
    assert set(run["analyzers"][0]) == {"name", "status", "seconds", "error", "notes"}
    (firing,) = run["alerts"]["firing"]
    assert firing["rule"] == "AnyErrors" and firing["labels"] == {"endpoint": "__all__", "model": "__all__"}
    assert firing["value"] == pytest.approx(
        next(f["value"] for f in run["figures"] if f["metric"] == "llm_error_rate" and f["labels"] == firing["labels"])
    )
    assert run["alerts"]["pending"] == run["alerts"]["resolved"] == run["alerts"]["silenced"] == []
    for group, items in run["alerts"].items():  # as many as the text summary's lines
        assert len(items) == sum(n.startswith(f"alert {group}: ") for n in run["notes"])
    assert "alert firing: AnyErrors llm_error_rate{endpoint=__all__, model=__all__}" in " ".join(run["notes"])
    assert len(slack.delivered()) == 1

    # alerts list: the stored state, and a silence added through the CLI
    silence_args = ["-m", "alertname=AnyErrors", "--until", "2h", "--comment", "deploying a fix"]
    sil = runner.invoke(app, ["alerts", "silence", *base, *silence_args])
    assert sil.exit_code == 0, sil.output
    res = runner.invoke(app, ["alerts", "list", *base, "--format", "json"])
    assert res.exit_code == 0, res.output
    listed = doc(res)
    assert set(listed) == {"alerts", "silences"}
    (alert,) = listed["alerts"]
    (state,) = AlertStore(cfg).states().values()
    assert alert["alert_id"] == state.alert_id and alert["status"] == "firing" == state.status
    assert alert["active_since"] == iso(state.active_since) and ISO_UTC.match(alert["active_since"])
    (silence,) = listed["silences"]
    assert alert["silenced_by"] == silence["id"] and silence["state"] == "active"
    assert silence["matchers"] == ["alertname=AnyErrors"] and ISO_UTC.match(silence["ends_at"])
    text = runner.invoke(app, ["alerts", "list", *base])
    assert f"firing (silenced {silence['id']})" in text.stdout and silence["id"] in text.stdout

    # alerts history: the outbox, and the per-window events
    res = runner.invoke(app, ["alerts", "history", *base, "--format", "json"])
    assert res.exit_code == 0, res.output
    (note,) = doc(res)["notifications"]
    (entry,) = AlertStore(cfg).outbox_entries()
    assert note["id"] == entry.outbox_id and note["status"] == "sent" and note["route"] == "default"
    assert note["channel"] == "slack" and note["window"]["start"] == w["start"] and note["attempts"] == 1
    assert [(a["rule"], a["status"]) for a in note["alerts"]] == [("AnyErrors", "firing")]
    res = runner.invoke(app, ["alerts", "history", *base, "--windows", "--format", "json"])
    assert res.exit_code == 0, res.output
    (event,) = doc(res)["events"]
    assert event["window"] == {"start": w["start"], "end": w["end"], "granularity": "daily"}
    assert {k: event[k] for k in firing} == firing  # what the run reported is what was recorded
    text = runner.invoke(app, ["alerts", "history", *base, "--windows"])
    assert "AnyErrors" in text.stdout and "firing" in text.stdout

    # backfill --dry-run: the window just run is skipped, the others would run
    args = ["backfill", *base, "--start", str(DAY - dt.timedelta(days=1)), "--end", str(DAY + dt.timedelta(days=1))]
    res = runner.invoke(app, [*args, "--dry-run", "--format", "json"])
    assert res.exit_code == 0, res.output
    plan = doc(res)
    assert {"windows", "to_run", "skipped", "redo", "order", "concurrency", "range"} <= set(plan)
    assert (plan["to_run"], plan["skipped"]) == (2, 1)
    assert [(x["window"]["label"][:10], x["action"]) for x in plan["windows"]] == [
        (str(DAY - dt.timedelta(days=1)), "run"),
        (str(DAY + dt.timedelta(days=1)), "run"),
        (str(DAY), "skip"),
    ]
    assert plan["windows"][2]["reason"] == "latest run success (redo=missing)"
    text = runner.invoke(app, [*args, "--dry-run"])
    assert "dry run: 2 windows would run, 1 skipped" in text.stdout
    assert "skip: latest run success (redo=missing)" in text.stdout

    # backfill: the outcomes, no progress bar on stdout
    day_before = str(DAY - dt.timedelta(days=1))
    res = runner.invoke(app, ["backfill", *base, "--start", day_before, "--end", day_before, "--format", "json"])
    assert res.exit_code == 0, res.output
    done = doc(res)
    assert done["status"] == "success" and done["outcomes"] == {"success": 1} and done["interrupted_by"] is None
    (one,) = done["windows"]
    assert one["outcome"] == "success" and one["window"]["start"] == f"{day_before}T00:00:00Z" and one["run_id"]


def test_json_values_nan_and_datetimes() -> None:
    got = jsonable({"a": float("nan"), "b": float("-inf"), "c": (1.5, dt.datetime(2026, 11, 10, 3, 4, 5))})
    assert got == {"a": None, "b": None, "c": [1.5, "2026-11-10T03:04:05Z"]}
    aware = dt.datetime(2026, 11, 10, 4, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert jsonable(aware) == "2026-11-10T03:00:00Z" and jsonable(dt.date(2026, 11, 10)) == "2026-11-10"


@pytest.mark.usefixtures("prefect_harness")
def test_a_failing_run_prints_a_failed_document(tmp_path: Path, frame: pd.DataFrame) -> None:
    cfg = write_config(tmp_path, frame.head(50))
    cfg.write_text(cfg.read_text().replace("interactions_table: interactions", "interactions_table: events"))
    res = runner.invoke(app, ["run", "--config", str(cfg), "--date", DAY.isoformat(), "--format", "json"])
    assert res.exit_code == 2, res.output
    got = doc(res)
    assert set(got) == {"status", "error"} and got["status"] == "failed"
    assert "table 'events' not found" in got["error"]
    assert res.stderr.strip() == f"run failed: {got['error']}"


def test_config_check_document_agrees_with_the_text(tmp_path: Path, frame: pd.DataFrame) -> None:
    cfg = write_config(
        tmp_path,
        frame.head(200),
        drift={"features": [{"name": "no_such_column", "type": "categorical"}]},
        alerts=alerting("AIMON_TEST_JSON_UNSET_WEBHOOK"),
    )
    text = runner.invoke(app, ["config", "check", "--config", str(cfg)])
    res = runner.invoke(app, ["config", "check", "--config", str(cfg), "--format", "json"])
    assert res.exit_code == text.exit_code == 1, res.output  # the drift feature, the channel's secret
    got = doc(res)
    assert set(got) == {
        "config",
        "warehouse",
        "store",
        "analyzers",
        "notes",
        "rules_never_judged",
        "channels",
        "pushgateway",
        "problems",
    }
    assert got["config"] == {"source": str(cfg), "ok": True}
    assert got["warehouse"]["ok"] and got["warehouse"]["error"] is None
    assert {"timestamp", "model", "status", "latency_seconds"} <= set(got["warehouse"]["contract_columns"])
    assert got["store"]["ok"] and "monitoring_metrics" in got["store"]["where"]
    lines = check_lines(text.stdout)
    assert {a["name"]: f"{a['status']} {a['reason']}" for a in got["analyzers"]} == lines
    assert next(a for a in got["analyzers"] if a["name"] == "drift")["status"] == "fails"
    (channel,) = got["channels"]
    assert channel["name"] == "slack" and not channel["ok"] and "AIMON_TEST_JSON_UNSET_WEBHOOK" in channel["error"]
    assert got["pushgateway"] is None and got["problems"] == 2
    assert res.stderr == ""  # the channel's error is in the document, not on the terminal


@pytest.mark.slow
def test_a_degraded_run_in_a_fresh_process_prints_only_its_document(tmp_path: Path, frame: pd.DataFrame) -> None:
    """Prefect's own console output, progress and notes stay off stdout; exit 1 as in text."""
    cfg = write_config(tmp_path, frame, drift={"features": [{"name": "no_such_column", "type": "categorical"}]})
    cmd = [sys.executable, "-m", "aimon.cli", "run", "--config", str(cfg), "--date", str(DAY), "--format", "json"]
    res = subprocess.run(cmd, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=240)
    got = json.loads(res.stdout)
    assert got["status"] == "degraded"
    (failed,) = [a for a in got["analyzers"] if a["status"] == "failed"]
    assert failed["name"] == "drift" and "no_such_column" in failed["error"]
    assert any(f["metric"] == "llm_requests" for f in got["figures"])
    line = assert_one_failure_line(res, 1)
    assert f"ended degraded (run {got['run_id']})" in line
