"""Windows that have not ended: refused (exit 2) by `aimon run`, `aimon backfill` and the
flow, with nothing stored, recorded or resolved; `--allow-partial` runs one as a
provisional window. And the alert side of "absence is not judged": an empty past window
or a provisional one never resolves an alert. Through Prefect (the session harness) on
DuckDB, with a local Slack webhook server to see what on-call would receive."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from aimon import windows
from aimon.cli import app
from aimon.config import load_config
from aimon.errors import WindowOpen
from aimon.flows.backfill import plan_backfill
from aimon.flows.monitor import monitor_window
from aimon.store.alerts import AlertStore
from aimon.store.metrics import Store
from aimon.windows import check_ended, daily_window, window_containing
from tests.conftest import DAY, PRICING, write_duckdb
from tests.servers import SlackServer

pytestmark = pytest.mark.usefixtures("prefect_harness")
runner = CliRunner()

RULE = {
    "name": "ErrorRateHigh",
    "metric": "llm_error_rate",
    "labels": {"model": "__all__", "endpoint": "__all__"},
    "op": ">",
    "threshold": 0.005,  # every day of the test frame breaches it (1-2% errors)
    "severity": "critical",
    "route": "oncall",
    # The shape of the template that mailed "$nan" for an absent series.
    "summary": "errors cost us ${value:,.4f} per request, bound ${bound:,.3f}",
}


def write_config(tmp_path: Path, url: str, **extra: Any) -> str:
    data = {
        "warehouse": {"url": url, "interactions_table": "interactions"},
        "pricing": PRICING,
        "alerts": {
            "rules": [RULE],
            "resolve_after": 1,  # the window back within bounds resolves (the default waits 2)
            "routes": [{"name": "oncall", "channels": ["oncall-slack"]}],
            "channels": {"oncall-slack": {"type": "slack", "webhook_url_env": "AIMON_TEST_SLACK_WEBHOOK"}},
        },
        **extra,
    }
    path = tmp_path / "monitoring.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def shifted_frame(frame: pd.DataFrame, day: dt.date, *, clean_day: bool = False) -> pd.DataFrame:
    """The test frame moved so that its DAY is `day`; `clean_day`: that day has no errors."""
    df = frame.copy()
    df["timestamp"] = df["timestamp"] + pd.Timedelta(days=(day - DAY).days)
    if clean_day:
        on_day = df["timestamp"].dt.date == day
        df.loc[on_day & df["status"].notna(), "status"] = "ok"
    return df


def alert_picture(cfg_path: str) -> tuple[list[tuple[str, str | None, dt.datetime]], list[tuple[dt.datetime, str]]]:
    astore = AlertStore(load_config(cfg_path))
    states = sorted((s.status, s.notified_status, s.last_window_start) for s in astore.states().values())
    events = sorted((e.window_start, e.status) for e in astore.events_between())
    return states, events


def slack_text(server: SlackServer) -> list[str]:
    return [str(r.body) for r in server.requests]


# -- refusals --------------------------------------------------------------------------------------


def test_a_future_date_is_refused_exit_2_nothing_stored_and_alert_state_unchanged(
    tmp_path: Path, duck_url: str, slack: SlackServer
) -> None:
    cfg = write_config(tmp_path, duck_url)
    fired = monitor_window(window_start=(DAY + dt.timedelta(days=1)).isoformat(), config_path=cfg, notify=True)
    assert any(n.startswith("alert firing: ErrorRateHigh") for n in fired.notes)
    before, sent = alert_picture(cfg), len(slack.requests)
    assert before[0] == [("firing", "firing", daily_window(DAY + dt.timedelta(days=1)).start)]

    res = runner.invoke(app, ["run", "--config", cfg, "--date", "2027-01-01"])
    assert res.exit_code == 2, res.output
    assert "daily 2027-01-01 (UTC)" in res.output and "has not begun" in res.output
    future = daily_window(dt.date(2027, 1, 1))
    store = Store(load_config(cfg))
    assert store.runs_for(future) == []
    assert store.figures(granularity="daily", start_from=future.start, before=future.end) == []
    assert alert_picture(cfg) == before and len(slack.requests) == sent  # nothing resolved, nothing sent


def test_todays_open_window_is_refused_by_run_flow_and_schedule_in_the_configured_timezone(
    tmp_path: Path, duck_url: str
) -> None:
    tz = "Pacific/Kiritimati"  # UTC+14: its "today" is often UTC's tomorrow
    cfg = write_config(tmp_path, duck_url, windows={"timezone": tz})
    today = window_containing(dt.datetime.now(dt.UTC), "daily", tz)
    local_today = today.local_start.date().isoformat()
    res = runner.invoke(app, ["run", "--config", cfg, "--date", local_today])
    assert res.exit_code == 2, res.output
    assert f"daily {local_today} ({tz})" in res.output and "has not ended" in res.output
    assert "--allow-partial" in res.output
    hour = dt.datetime.now(dt.UTC).isoformat()
    res = runner.invoke(app, ["run", "--config", cfg, "--granularity", "hourly", "--window-start", hour])
    assert res.exit_code == 2 and "has not ended" in res.output, res.output

    for scheduled in (False, True):  # a deployment's run, ad hoc or on its schedule's parameters
        with pytest.raises(WindowOpen, match="has not ended"):
            monitor_window(window_start=local_today, config_path=cfg, scheduled=scheduled)
    store = Store(load_config(cfg))
    store.ensure()  # refused before the store was even opened: create its tables to look
    assert store.runs_for(today) == []


def test_backfill_into_an_open_window_is_refused_naming_it_and_runs_nothing(tmp_path: Path, duck_url: str) -> None:
    cfg = write_config(tmp_path, duck_url)
    today = today_utc()
    res = runner.invoke(app, ["backfill", "--config", cfg, "--start", DAY.isoformat(), "--end", today.isoformat()])
    assert res.exit_code == 2, res.output
    assert f"daily {today} (UTC)" in res.output and "has not ended" in res.output
    assert f"--end {today - dt.timedelta(days=1)}" in res.output and "--allow-partial" in res.output
    store = Store(load_config(cfg))
    store.ensure()
    assert store.runs_for(daily_window(DAY)) == []  # refused before any window ran


# -- provisional windows ---------------------------------------------------------------------------


def test_allow_partial_stores_provisional_figures_records_no_finished_run_and_resolves_nothing(
    tmp_path: Path, frame: pd.DataFrame, slack: SlackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = today_utc()
    url = write_duckdb(tmp_path / "wh.duckdb", shifted_frame(frame, today, clean_day=True))
    cfg = write_config(tmp_path, url)
    window = daily_window(today)
    # Yesterday (the last complete window) breaches: the alert fires and on-call is told.
    monitor_window(window_start=(today - dt.timedelta(days=1)).isoformat(), config_path=cfg)
    [told] = slack_text(slack)
    assert "FIRING" in told

    res = runner.invoke(app, ["run", "--config", cfg, "--date", today.isoformat(), "--allow-partial", "--notify"])
    assert res.exit_code == 0, res.output
    assert "provisional" in res.output and "no alert resolves" in res.output
    store = Store(load_config(cfg))
    figs = {f.metric: f.value for f in store.figures(granularity="daily", start_from=window.start, before=window.end)}
    assert figs["monitoring_window_provisional"] == 1 and figs["llm_error_rate"] == 0  # today: no errors so far
    assert [r["status"] for r in store.runs_for(window)] == ["provisional"]
    [state] = store.window_states([window])
    assert state.latest_status is None and state.claimed_by is None  # never a finished run
    # Today's figures are within bounds, yet a provisional window resolves nothing.
    states, events = alert_picture(cfg)
    assert [s[0] for s in states] == ["firing"] and all(status != "resolved" for _, status in events)
    assert len(slack.requests) == 1
    # Once the window has ended, the plan and a `redo=missing` run still run it ...
    tomorrow = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(1))
    assert plan_backfill(load_config(cfg), today, today, now=tomorrow).to_run == (window,)
    clock = windows._utc_now
    monkeypatch.setattr(windows, "_utc_now", lambda now=None: tomorrow if now is None else clock(now))
    final = monitor_window(window_start=today.isoformat(), config_path=cfg, redo="missing")
    assert final.status == "success" and not final.provisional
    # ... replacing the provisional figures, and now the alert resolves, with real numbers.
    figs = {f.metric: f.value for f in store.figures(granularity="daily", start_from=window.start, before=window.end)}
    assert "monitoring_window_provisional" not in figs
    assert [r["status"] for r in store.runs_for(window)] == ["provisional", "success"]
    assert [s[0] for s in alert_picture(cfg)[0]] == ["resolved"]
    [_, resolved] = slack_text(slack)
    assert "RESOLVED" in resolved and "nan" not in resolved.lower() and "$0.0000 per request" in resolved


def test_an_empty_past_window_is_a_no_data_run_that_resolves_nothing(
    tmp_path: Path, duck_url: str, slack: SlackServer
) -> None:
    cfg = write_config(tmp_path, duck_url)
    last = DAY + dt.timedelta(days=1)  # the frame's last day with rows
    monitor_window(window_start=last.isoformat(), config_path=cfg, notify=True)
    assert len(slack.requests) == 1
    empty = monitor_window(window_start=(last + dt.timedelta(days=1)).isoformat(), config_path=cfg, notify=True)
    assert empty.status == "success" and any("no data" in n for n in empty.notes)
    # The series has no rows in the empty window: not judged, still firing, nothing sent.
    states, events = alert_picture(cfg)
    assert [s[0] for s in states] == ["firing"] and [status for _, status in events] == ["firing"]
    assert len(slack.requests) == 1


def test_check_ended_refuses_open_and_future_windows_and_lets_partial_through_only_once_begun() -> None:
    now = dt.datetime(2026, 11, 10, 12, 0)
    assert check_ended(daily_window(DAY - dt.timedelta(days=1)), now=now) is False
    with pytest.raises(WindowOpen, match="has not ended"):
        check_ended(daily_window(DAY), now=now)
    assert check_ended(daily_window(DAY), allow_partial=True, now=now) is True  # provisional
    with pytest.raises(WindowOpen, match="has not begun"):
        check_ended(daily_window(DAY + dt.timedelta(days=1)), allow_partial=True, now=now)
    # Berlin's 2026-11-10 ends at 23:00 UTC: open at 22:30 UTC, ended at 23:00.
    berlin = daily_window(DAY, "Europe/Berlin")
    with pytest.raises(WindowOpen):
        check_ended(berlin, now=dt.datetime(2026, 11, 10, 22, 30))
    assert check_ended(berlin, now=dt.datetime(2026, 11, 10, 23, 0, tzinfo=dt.UTC)) is False


# -- ad-hoc deployment runs ------------------------------------------------------------------------


def test_an_explicit_window_start_with_scheduled_runs_that_window_again_without_catch_up(
    tmp_path: Path, duck_url: str
) -> None:
    cfg = write_config(tmp_path, duck_url, orchestration={"catchup_windows": 2})
    first = monitor_window(window_start=DAY.isoformat(), config_path=cfg)
    # `prefect deployment run monitor-window/aimon-daily --param window_start=...` keeps the
    # deployment's scheduled=true: the day runs again all the same.
    again = monitor_window(window_start=DAY.isoformat(), config_path=cfg, scheduled=True)
    assert again.status == "success" and again.window == daily_window(DAY) and again.run_id != first.run_id
    store = Store(load_config(cfg))
    assert [r["status"] for r in store.runs_for(daily_window(DAY))] == ["success", "success"]
    assert store.runs_for(daily_window(DAY - dt.timedelta(days=1))) == []  # no catch-up for an ad-hoc day
