"""Alerting inside monitor_window (Prefect), on the demo generator's data with the
shipped default rules: the incident days page, the normal days do not; a backfill
records without sending; a failed run still pages."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from aimon.config import load_config
from aimon.demo import seed_duckdb
from aimon.errors import ContractError
from aimon.flows.monitor import monitor_window
from aimon.store.alerts import AlertStore
from tests.servers import SlackServer

pytestmark = pytest.mark.usefixtures("prefect_harness")

REPO = Path(__file__).resolve().parent.parent
END = dt.date(2026, 11, 20)  # the demo's last day: latency, cost and unpriced-model incidents
DAYS = 6  # END-2 is the error-burst day; END-5..END-3 are normal and give the baselines


def demo_config(tmp_path: Path, **warehouse: Any) -> str:
    """The shipped config (pricing, budgets, default rules), with a Slack channel."""
    data = yaml.safe_load((REPO / "configs" / "monitoring.yaml").read_text())
    data["warehouse"] = {**data["warehouse"], "url": f"duckdb:///{tmp_path / 'wh.duckdb'}", **warehouse}
    data["warehouse"]["feedback_table"] = None
    data["alerts"]["channels"] = {"team-slack": {"type": "slack", "webhook_url_env": "AIMON_TEST_SLACK_WEBHOOK"}}
    data["alerts"]["routes"] = [{"name": "default", "channels": ["team-slack"]}]
    path = tmp_path / "monitoring.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def firing_by_day(cfg_path: str) -> dict[dt.date, set[str]]:
    out: dict[dt.date, set[str]] = {}
    for e in AlertStore(load_config(cfg_path)).events_between():
        if e.status == "firing":
            out.setdefault(e.window_start.date(), set()).add(e.rule)
    return out


@pytest.mark.slow
def test_demo_incident_days_page_and_normal_days_do_not(tmp_path: Path, slack: SlackServer) -> None:
    seed_duckdb(tmp_path / "wh.duckdb", days=DAYS, rows_per_day=4000, seed=7, end=END, feedback_table=None)
    cfg = demo_config(tmp_path)
    days = [END - dt.timedelta(days=o) for o in range(DAYS - 1, -1, -1)]
    # A backfill of the earlier days (historical windows): alerts recorded, nothing sent.
    for day in days[:-1]:
        summary = monitor_window(granularity="daily", window_start=day.isoformat(), config_path=cfg)
        assert summary.status == "success"
    assert slack.requests == []
    burst = END - dt.timedelta(days=2)
    # The burst also shifts the mix of error types: where the built-in error_type drift
    # fires with it, the shipped inhibit rule folds it into ErrorRateHigh (one page).
    assert firing_by_day(cfg) == {burst: {"ErrorRateHigh"}}
    events = AlertStore(load_config(cfg)).events_between()
    drift = [e for e in events if e.rule == "DataDriftDetected" and e.status != "resolved"]
    assert all(e.window_start.date() == burst and e.status == "folded" and "error_type" in e.labels for e in drift)
    # Back under 5% the next day: recovering (resolve_after 2), not yet resolved.
    assert [(e.window_start.date(), e.status) for e in events if e.rule == "ErrorRateHigh"] == [
        (burst, "firing"),
        (burst + dt.timedelta(days=1), "recovering"),
    ]
    [err] = [e for e in events if e.status == "firing" and e.rule == "ErrorRateHigh"]
    assert '"model":"claude-3-5-sonnet"' in err.labels and err.value is not None and err.value > 0.05

    # The last day, sent: one grouped message with every alert of the default route.
    summary = monitor_window(granularity="daily", window_start=END.isoformat(), config_path=cfg, notify=True)
    # Every incident injected on the last day pages: latency, cost, the unpriced model,
    # the quality drop (issue 4), the language and embedding drift (issue 3).
    assert firing_by_day(cfg)[END] == {
        "LatencyP95High",
        "CostSpike",
        "UnpricedRequests",
        "QualityDrop",
        "DataDriftDetected",
        "EmbeddingDriftDetected",
    }
    assert any(n.startswith("alert firing: LatencyP95High") and "model=gpt-4o" in n for n in summary.notes)
    assert any(n.startswith("notification sent: default -> team-slack") for n in summary.notes)
    [msg] = slack.requests
    text = "\n".join(b["text"]["text"] for b in msg.body["blocks"] if b["type"] == "section")
    assert text.index("LatencyP95High") < text.index("UnpricedRequests")  # warning before info
    assert "p95 latency of gpt-4o on /chat" in text and "mistral-large" in text
    assert "ErrorRateHigh" not in text  # resolved before, never sent: nothing to resolve
    # Privacy: only figure names, labels and numbers reach a notification.
    # (The experiment is named "prompt-v2": a name, not a prompt.)
    body = str(msg.body)
    assert not any(f"{k}=" in body for k in ("user_id", "prompt", "response", "reference"))
    assert not re.search(r"\bu\d+\b", body)  # the demo's user ids look like u123

    # A rerun of the same window sends nothing new.
    monitor_window(granularity="daily", window_start=END.isoformat(), config_path=cfg, notify=True)
    assert len(slack.requests) == 1


@pytest.mark.slow
def test_a_failed_run_still_pages(tmp_path: Path, slack: SlackServer) -> None:
    seed_duckdb(tmp_path / "wh.duckdb", days=1, rows_per_day=200, seed=7, end=END, feedback_table=None)
    cfg = demo_config(tmp_path, interactions_table="interactionz")
    with pytest.raises(ContractError):
        monitor_window(granularity="daily", window_start=END.isoformat(), config_path=cfg, notify=True)
    [msg] = slack.requests
    assert "MonitoringRunFailed" in str(msg.body["blocks"]) and "CRITICAL" in str(msg.body["blocks"])
    [state] = AlertStore(load_config(cfg)).states().values()
    assert state.rule == "MonitoringRunFailed" and state.status == "firing"


def test_a_secret_can_come_from_a_prefect_secret_block() -> None:
    from prefect.blocks.system import Secret

    from aimon.errors import SendError
    from aimon.tasks.alerts.channel_base import resolve_secret

    Secret(value="https://hooks.example.invalid/T/B/blocksecret").save("aimon-test-webhook", overwrite=True)
    assert resolve_secret(None, "aimon-test-webhook", "x") == "https://hooks.example.invalid/T/B/blocksecret"
    with pytest.raises(SendError, match="cannot load Prefect Secret block 'aimon-test-nope'"):
        resolve_secret(None, "aimon-test-nope", "x")
