"""Notifications against real servers on loopback: aiosmtpd (STARTTLS + AUTH) and a
local HTTP server speaking Slack's webhook and chat.postMessage shapes, slack-sdk
pointed at it. The alert pipeline runs through its plain functions on a real store."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aimon.config import Config
from aimon.errors import SendError
from aimon.records import MetricRecord
from aimon.store.alerts import AlertStore, Silence
from aimon.store.metrics import Store
from aimon.tasks.alerts.channels import EmailChannel, SlackChannel
from aimon.tasks.alerts.pipeline import alert_window
from aimon.windows import daily_window
from tests.alert_days import D0, ERROR_RATE_HIGH, LATENCY_P95_HIGH, NOW, gpt4o_figures, run_day
from tests.conftest import make_config
from tests.servers import SlackServer, SmtpServer, free_port, self_signed_cert

PASSWORD = "s3cret-pw"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp(cert: tuple[Path, Path]) -> Iterator[SmtpServer]:
    server = SmtpServer(free_port(), *cert, password=PASSWORD).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    server = SlackServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch, slack: SlackServer) -> None:
    monkeypatch.setenv("AIMON_TEST_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("AIMON_TEST_SLACK_WEBHOOK", slack.webhook_url)
    monkeypatch.setenv("AIMON_TEST_SLACK_TOKEN", slack.token)


def email_channel(port: int, cert: Path, **kw: Any) -> dict[str, Any]:
    return {
        "type": "email",
        "host": "127.0.0.1",
        "port": port,
        "starttls": True,
        "ca_file": str(cert),
        "username": "aimon",
        "password_env": "AIMON_TEST_SMTP_PASSWORD",
        "sender": "aimon@example.com",
        "recipients": ["oncall@example.com", "ml@example.com"],
        "timeout_seconds": 5,
        **kw,
    }


RULES = [
    ERROR_RATE_HIGH,
    LATENCY_P95_HIGH,
    {
        "name": "CostSpike",
        "metric": "llm_cost_usd",
        "op": ">",
        "threshold": 100,
        "severity": "info",
        "route": "team",
    },
]


def alerts_cfg(tmp_path: Path, smtp_port: int, cert: Path, slack: SlackServer, **kw: Any) -> Config:
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    alerts = {
        "rules": kw.pop("rules", RULES),
        "routes": [
            {"name": "oncall", "channels": ["oncall-slack", "oncall-email"]},
            {"name": "team", "channels": ["team-slack"]},
        ],
        "channels": {
            "oncall-slack": {"type": "slack", "webhook_url_env": "AIMON_TEST_SLACK_WEBHOOK", "max_retries": 1},
            "oncall-email": email_channel(smtp_port, cert),
            "team-slack": {
                "type": "slack",
                "token_env": "AIMON_TEST_SLACK_TOKEN",
                "channel": "#ml-team",
                "base_url": slack.api_url,
                "max_retries": 1,
            },
        },
        "retry_backoff_seconds": 0.05,
        "repeat_interval": "3d",
        "resolve_after": 1,  # resolved in the first clean window (resolve_after: tests/test_alert_folding.py)
        "link": "https://grafana.example.com/d/aimon",
        **kw,
    }
    return make_config(url, alerts=alerts)


def figures(error_rate: float, p95: float, cost: float = 10.0) -> list[MetricRecord]:
    return [
        *gpt4o_figures(error_rate, p95),
        MetricRecord.of("llm_latency_seconds", 1.0, model="gpt-4o", endpoint="chat", quantile="0.5"),
        MetricRecord.of("llm_cost_usd", cost, model="gpt-4o", endpoint="chat"),
    ]


def baseline_days(cfg: Config, n: int = 3) -> None:
    for i in range(n):
        report = run_day(cfg, i, figures(0.01, 2.0))
        assert not report.firing


# -- channels on their own ------------------------------------------------------------------------

PAYLOAD: dict[str, Any] = {
    "route": "oncall",
    "run_id": "abc123",
    "granularity": "daily",
    "window": "daily 2026-11-05 (UTC) [2026-11-05 00:00, 2026-11-06 00:00) UTC",
    "window_label": "2026-11-05 (UTC)",
    "window_start": "2026-11-05T00:00:00",
    "window_end": "2026-11-06T00:00:00",
    "firing": 1,
    "resolved": 0,
    "link": None,
    "store": "table monitoring_metrics at duckdb:///x.duckdb",
    "items": [
        {
            "alert_id": "x",
            "rule": "ErrorRateHigh",
            "status": "firing",
            "repeat": False,
            "severity": "critical",
            "metric": "llm_error_rate",
            "labels": {"model": "gpt-4o", "endpoint": "__all__"},
            "value": 0.31,
            "value_text": "31.00%",
            "condition": "> 5.00%",
            "summary": "gpt-4o fails 31.0% of requests",
            "since": "2026-11-05T00:00:00",
            "fired_window_start": "2026-11-05T00:00:00",
            "for_windows": 1,
            "runbook": None,
        }
    ],
}


def test_email_starttls_login_sends_plain_and_html_parts(
    smtp: SmtpServer, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIMON_TEST_SMTP_PASSWORD", PASSWORD)
    cfg = make_config("duckdb:///unused.duckdb", alerts={"channels": {"e": email_channel(smtp.port, cert[0])}})
    EmailChannel("e", cfg.alerts.channels["e"]).send(PAYLOAD)  # type: ignore[arg-type]
    assert len(smtp.messages) == 1
    msg = smtp.messages[0]
    assert smtp.envelopes[0] == ("aimon@example.com", ["oncall@example.com", "ml@example.com"])
    assert msg["Subject"] == "[aimon] FIRING 1: ErrorRateHigh (daily 2026-11-05 (UTC))"
    plain = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for part in (plain, html):
        for want in ("CRITICAL", "ErrorRateHigh", "31.00%", "&gt; 5.00%" if part is html else "> 5.00%", "abc123"):
            assert want in part
        assert "2026-11-05 00:00 UTC" in part  # since when


def test_email_wrong_password_is_a_permanent_error_without_the_password(
    smtp: SmtpServer, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIMON_TEST_SMTP_PASSWORD", "wrong-pw-xyz")
    cfg = make_config("duckdb:///unused.duckdb", alerts={"channels": {"e": email_channel(smtp.port, cert[0])}})
    with pytest.raises(SendError) as info:
        EmailChannel("e", cfg.alerts.channels["e"]).send(PAYLOAD)  # type: ignore[arg-type]
    assert not info.value.transient
    assert "rejected the login" in str(info.value) and "wrong-pw-xyz" not in str(info.value)
    assert smtp.messages == []


def test_email_server_down_is_transient(cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMON_TEST_SMTP_PASSWORD", PASSWORD)
    cfg = make_config("duckdb:///unused.duckdb", alerts={"channels": {"e": email_channel(free_port(), cert[0])}})
    with pytest.raises(SendError) as info:
        EmailChannel("e", cfg.alerts.channels["e"]).send(PAYLOAD)  # type: ignore[arg-type]
    assert info.value.transient and "unreachable" in str(info.value)


def _slack(slack: SlackServer, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> SlackChannel:
    monkeypatch.setenv("AIMON_TEST_SLACK_WEBHOOK", slack.webhook_url)
    monkeypatch.setenv("AIMON_TEST_SLACK_TOKEN", slack.token)
    spec = {"type": "slack", "webhook_url_env": "AIMON_TEST_SLACK_WEBHOOK", **kw}
    cfg = make_config("duckdb:///unused.duckdb", alerts={"channels": {"s": spec}})
    return SlackChannel("s", cfg.alerts.channels["s"])  # type: ignore[arg-type]


def test_slack_webhook_block_kit_message(slack: SlackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    _slack(slack, monkeypatch).send(PAYLOAD)
    [req] = slack.requests
    assert req.path == "/services/T0001/B0001/webhooksecret42"
    blocks = req.body["blocks"]
    assert blocks[0]["type"] == "header" and "FIRING 1" in blocks[0]["text"]["text"]
    section = blocks[1]["text"]["text"]
    assert "*CRITICAL*" in section and "`ErrorRateHigh`" in section and "*31.00%*" in section
    assert "> 5.00%" in section and "since: 2026-11-05 00:00 UTC" in section
    assert "abc123" in blocks[-1]["elements"][0]["text"]
    assert req.body["text"].startswith("[aimon] FIRING 1")


def test_slack_429_retry_after_is_honoured(slack: SlackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    slack.plan = [(429, {"Retry-After": "1"})]
    _slack(slack, monkeypatch, max_retries=2).send(PAYLOAD)
    assert [r.status for r in slack.requests] == [429, 200]
    # slack-sdk waited out Retry-After (1 s, plus its jitter) before the retry.
    assert slack.requests[1].at - slack.requests[0].at >= 1.0


def test_slack_500_is_retried(slack: SlackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    slack.plan = [(500, {}), (500, {})]
    _slack(slack, monkeypatch, max_retries=2).send(PAYLOAD)
    assert [r.status for r in slack.requests] == [500, 500, 200]


def test_slack_500_beyond_retries_is_transient_and_masks_the_webhook(
    slack: SlackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    slack.plan = [(500, {}), (500, {})]
    with pytest.raises(SendError) as info:
        _slack(slack, monkeypatch, max_retries=1).send(PAYLOAD)
    assert info.value.transient and "HTTP 500" in str(info.value)
    assert "webhooksecret42" not in str(info.value)


def test_slack_bot_token_chat_post_message(slack: SlackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    ch = _slack(slack, monkeypatch)  # sets the env vars
    spec = {"type": "slack", "token_env": "AIMON_TEST_SLACK_TOKEN", "channel": "#ml", "base_url": slack.api_url}
    cfg = make_config("duckdb:///unused.duckdb", alerts={"channels": {"bot": spec}})
    bot = SlackChannel("bot", cfg.alerts.channels["bot"])  # type: ignore[arg-type]
    bot.send(PAYLOAD)
    [req] = slack.requests
    assert req.path == "/api/chat.postMessage"
    assert req.body["channel"] == "#ml" and req.body["blocks"][0]["type"] == "header"
    assert req.headers["Authorization"] == f"Bearer {slack.token}"
    del ch


def test_slack_bad_token_is_permanent_and_masked(slack: SlackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMON_TEST_SLACK_TOKEN", "xoxb-not-the-right-one")
    spec = {"type": "slack", "token_env": "AIMON_TEST_SLACK_TOKEN", "channel": "#ml", "base_url": slack.api_url}
    cfg = make_config("duckdb:///unused.duckdb", alerts={"channels": {"bot": spec}})
    with pytest.raises(SendError) as info:
        SlackChannel("bot", cfg.alerts.channels["bot"]).send(PAYLOAD)  # type: ignore[arg-type]
    assert not info.value.transient and "invalid_auth" in str(info.value)
    assert "xoxb-not-the-right-one" not in str(info.value)


def test_missing_secret_env_var_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIMON_TEST_SLACK_WEBHOOK", raising=False)
    spec = {"type": "slack", "webhook_url_env": "AIMON_TEST_SLACK_WEBHOOK"}
    cfg = make_config("duckdb:///unused.duckdb", alerts={"channels": {"s": spec}})
    with pytest.raises(SendError, match="environment variable AIMON_TEST_SLACK_WEBHOOK is not set"):
        SlackChannel("s", cfg.alerts.channels["s"])  # type: ignore[arg-type]


# -- the pipeline: rules -> state -> outbox -> channels ----------------------------------------------


@pytest.mark.usefixtures("secrets")
def test_incident_one_grouped_message_per_route_rerun_sends_nothing_then_one_resolved_notice(
    tmp_path: Path, smtp: SmtpServer, slack: SlackServer, cert: tuple[Path, Path]
) -> None:
    cfg = alerts_cfg(tmp_path, smtp.port, cert[0], slack)
    baseline_days(cfg)
    assert slack.requests == [] and smtp.messages == []

    # Day 3: error rate 31% (> 5%), p95 3x its median, cost over 100: three alerts, two routes.
    report = run_day(cfg, 3, figures(0.31, 6.0, cost=250.0))
    assert len(report.firing) == 3 and report.delivery.failed == ()
    webhook = [r for r in slack.requests if r.path.startswith("/services/")]
    bot = [r for r in slack.requests if r.path == "/api/chat.postMessage"]
    assert len(webhook) == 1 and len(bot) == 1 and len(smtp.messages) == 1
    oncall = webhook[0].body["blocks"]
    text = "\n".join(b["text"]["text"] for b in oncall if b["type"] == "section")
    # Grouped: both oncall alerts in one message, critical first.
    assert text.index("ErrorRateHigh") < text.index("LatencyP95High")
    assert "gpt-4o fails 31.0% of requests" in text and "claude" not in text
    assert "1.5x the median 2 s of the previous 3 windows = 3 s" in text
    assert "runbook: https://runbooks.example.com/llm-errors" in text
    assert "run03" in oncall[-1]["elements"][0]["text"] and "grafana.example.com" in oncall[-1]["elements"][0]["text"]
    assert "CostSpike" in bot[0].body["text"] and bot[0].body["channel"] == "#ml-team"
    mail = smtp.messages[0]
    assert mail["Subject"].startswith("[aimon] FIRING 2: ErrorRateHigh and 1 more")
    assert "LatencyP95High" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    # The same window again (a rerun): nothing new anywhere.
    report = run_day(cfg, 3, figures(0.31, 6.0, cost=250.0))
    assert len(report.firing) == 3 and report.queued == 0
    assert len(slack.requests) == 2 and len(smtp.messages) == 1

    # Day 4 clean: one resolved notice per route, once.
    report = run_day(cfg, 4, figures(0.01, 2.0))
    assert len(report.resolved) == 3
    assert len(slack.requests) == 4 and len(smtp.messages) == 2
    resolved = slack.requests[2].body["blocks"] + slack.requests[3].body["blocks"]
    assert sum("RESOLVED" in b.get("text", {}).get("text", "") for b in resolved if b["type"] == "section") == 3
    assert smtp.messages[1]["Subject"].startswith("[aimon] RESOLVED 2")
    run_day(cfg, 4, figures(0.01, 2.0))
    run_day(cfg, 5, figures(0.01, 2.0))
    assert len(slack.requests) == 4 and len(smtp.messages) == 2
    sent = AlertStore(cfg).outbox_entries()
    assert len(sent) == 6 and {e.status for e in sent} == {"sent"}


@pytest.mark.usefixtures("secrets")
def test_for_2_fires_on_the_second_consecutive_breach_not_the_first(
    tmp_path: Path, smtp: SmtpServer, slack: SlackServer, cert: tuple[Path, Path]
) -> None:
    rules = [{**RULES[0], "for": 2}]
    cfg = alerts_cfg(tmp_path, smtp.port, cert[0], slack, rules=rules)
    run_day(cfg, 0, figures(0.01, 2.0))
    first = run_day(cfg, 1, figures(0.20, 2.0))
    assert first.firing == () and len(first.pending) == 1 and slack.requests == []
    # A clean window breaks the streak: the next breach is a first breach again.
    run_day(cfg, 2, figures(0.01, 2.0))
    again = run_day(cfg, 3, figures(0.20, 2.0))
    assert again.firing == () and len(again.pending) == 1
    second = run_day(cfg, 4, figures(0.25, 2.0))
    assert len(second.firing) == 1 and len(slack.requests) == 1 and len(smtp.messages) == 1
    text = slack.requests[0].body["blocks"][1]["text"]["text"]
    assert "for 2 consecutive windows" in text and "since: 2026-11-04 00:00 UTC" in text
    events = AlertStore(cfg).events_between()
    assert [(e.window_start.day, e.status) for e in events] == [(2, "pending"), (4, "pending"), (5, "firing")]


@pytest.mark.usefixtures("secrets")
def test_silence_mutes_the_matching_alert_and_not_another(
    tmp_path: Path, smtp: SmtpServer, slack: SlackServer, cert: tuple[Path, Path]
) -> None:
    cfg = alerts_cfg(tmp_path, smtp.port, cert[0], slack)
    baseline_days(cfg)
    AlertStore(cfg).add_silence(
        Silence("s1", ("alertname=ErrorRateHigh", "model=gpt-4o"), NOW, NOW + dt.timedelta(hours=2), "known", "me", NOW)
    )
    report = run_day(cfg, 3, figures(0.31, 6.0))
    assert len(report.silenced) == 1 and "ErrorRateHigh" in report.silenced[0] and "s1" in report.silenced[0]
    [msg] = [r for r in slack.requests if r.path.startswith("/services/")]
    text = str(msg.body["blocks"])
    assert "LatencyP95High" in text and "ErrorRateHigh" not in text
    [event] = [e for e in AlertStore(cfg).events_between() if e.rule == "ErrorRateHigh"]
    assert event.status == "firing" and event.silenced_by == "s1"
    # The silence ends while the alert still fires: the next window tells the route.
    later = NOW + dt.timedelta(hours=3)
    run_day(cfg, 4, figures(0.31, 6.0), now=later)
    assert "ErrorRateHigh" in str(slack.requests[-1].body["blocks"])


@pytest.mark.usefixtures("secrets")
def test_smtp_down_nothing_lost_then_delivered_exactly_once(
    tmp_path: Path, cert: tuple[Path, Path], slack: SlackServer
) -> None:
    port = free_port()  # nothing listens yet
    cfg = alerts_cfg(tmp_path, port, cert[0], slack)
    baseline_days(cfg)
    report = run_day(cfg, 3, figures(0.31, 2.0))
    assert len(report.delivery.failed) == 1 and "oncall-email" in report.delivery.failed[0]
    [pending] = AlertStore(cfg).outbox_entries("pending")
    assert pending.channel == "oncall-email" and pending.attempts == 3 and "unreachable" in (pending.last_error or "")
    assert PASSWORD not in (pending.last_error or "")
    server = SmtpServer(port, *cert, password=PASSWORD).start()
    try:
        # The next run (the next window, clean) delivers the queued one and the resolved notice.
        report = run_day(cfg, 4, figures(0.01, 2.0))
        assert len(server.messages) == 2
        subjects = sorted(m["Subject"] for m in server.messages)
        assert subjects[0].startswith("[aimon] FIRING 1: ErrorRateHigh") and subjects[1].startswith("[aimon] RESOLVED")
        run_day(cfg, 4, figures(0.01, 2.0))
        run_day(cfg, 5, figures(0.01, 2.0))
        assert len(server.messages) == 2
    finally:
        server.stop()
    statuses = {(e.channel, e.status) for e in AlertStore(cfg).outbox_entries()}
    assert statuses == {("oncall-email", "sent"), ("oncall-slack", "sent")}


@pytest.mark.usefixtures("secrets")
def test_unsent_notification_expires(tmp_path: Path, cert: tuple[Path, Path], slack: SlackServer) -> None:
    cfg = alerts_cfg(tmp_path, free_port(), cert[0], slack, outbox_expiry="1h", send_attempts=1)
    baseline_days(cfg)
    run_day(cfg, 3, figures(0.31, 2.0))
    report = run_day(cfg, 4, figures(0.31, 2.0), now=NOW + dt.timedelta(hours=2))
    assert len(report.delivery.expired) == 1
    assert [e.status for e in AlertStore(cfg).outbox_entries() if e.channel == "oncall-email"] == ["expired"]


@pytest.mark.usefixtures("secrets")
def test_repeat_interval_and_historical_windows(
    tmp_path: Path, smtp: SmtpServer, slack: SlackServer, cert: tuple[Path, Path]
) -> None:
    cfg = alerts_cfg(tmp_path, smtp.port, cert[0], slack, rules=[RULES[0]], repeat_interval="2d")
    # A backfill (send=False) records the alert in its windows and sends nothing.
    for i in range(3):
        report = run_day(cfg, i, figures(0.31 if i else 0.01, 2.0), send=False)
    assert len(report.firing) == 1 and slack.requests == [] and AlertStore(cfg).outbox_entries() == []
    assert [e.window_start.day for e in AlertStore(cfg).events_between()] == [2, 3]
    # The first live window that still sees it firing tells the route (it was never told).
    run_day(cfg, 3, figures(0.31, 2.0))
    assert len(slack.requests) == 1
    run_day(cfg, 4, figures(0.31, 2.0))  # one day later: within the 2d repeat interval
    assert len(slack.requests) == 1
    run_day(cfg, 5, figures(0.31, 2.0))  # two days after the last notice: repeated
    assert len(slack.requests) == 2 and "still firing" in str(slack.requests[1].body["blocks"])
    # An old window evaluated after newer ones records its event and leaves the state alone.
    run_day(cfg, 1, figures(0.01, 2.0), send=True)
    assert len(slack.requests) == 2
    # ... and a rerun of a window that was fine before the alert began resolves nothing.
    run_day(cfg, 0, figures(0.01, 2.0), send=True)
    assert [e.status for e in AlertStore(cfg).events_between() if e.window_start.day == 1] == []
    [state] = AlertStore(cfg).states().values()
    assert state.status == "firing" and state.last_window_start.day == 6


def test_slack_debug_log_masks_the_webhook_url(
    slack: SlackServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _slack(slack, monkeypatch).send(PAYLOAD)
    assert "Sending a request" in caplog.text  # slack-sdk did log the request ...
    assert "webhooksecret42" not in caplog.text  # ... with the URL masked


@pytest.mark.usefixtures("secrets")
def test_a_channel_down_is_tried_once_per_run_and_delivers_in_order_when_back(
    tmp_path: Path, cert: tuple[Path, Path], slack: SlackServer
) -> None:
    port = free_port()
    cfg = alerts_cfg(tmp_path, port, cert[0], slack, rules=[RULES[0]])
    run_day(cfg, 0, figures(0.31, 2.0))  # fires: the email fails (3 attempts)
    report = run_day(cfg, 1, figures(0.01, 2.0))  # resolves: the old one fails again, the new one waits
    assert any("not tried" in f for f in report.delivery.failed)
    pending = sorted(AlertStore(cfg).outbox_entries("pending"), key=lambda e: e.created_at)
    assert [e.attempts for e in pending] == [6, 0]
    server = SmtpServer(port, *cert, password=PASSWORD).start()
    try:
        run_day(cfg, 2, figures(0.01, 2.0))
        assert [m["Subject"].split(":")[0] for m in server.messages] == ["[aimon] FIRING 1", "[aimon] RESOLVED 1"]
    finally:
        server.stop()
    assert AlertStore(cfg).outbox_entries("pending") == []


@pytest.mark.postgres
@pytest.mark.usefixtures("secrets")
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_state_and_outbox_on_sqlite_and_postgresql(
    backend: str, tmp_path: Path, smtp: SmtpServer, slack: SlackServer, cert: tuple[Path, Path], request: Any
) -> None:
    from tests.conftest import PG_URL

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    else:
        url = f"{PG_URL}?options=-csearch_path%3D{request.getfixturevalue('pg_schema')}"
    base = alerts_cfg(tmp_path, smtp.port, cert[0], slack)
    cfg = base.model_copy(update={"warehouse": base.warehouse.model_copy(update={"url": url})})
    baseline_days(cfg)
    AlertStore(cfg).add_silence(
        Silence("s1", ("alertname=CostSpike",), NOW, NOW + dt.timedelta(hours=1), "x", "me", NOW)
    )
    report = run_day(cfg, 3, figures(0.31, 6.0, cost=250.0))
    assert len(report.firing) == 2 and len(report.silenced) == 1
    run_day(cfg, 3, figures(0.31, 6.0, cost=250.0))
    run_day(cfg, 4, figures(0.01, 2.0))
    assert len(slack.requests) == 2 and len(smtp.messages) == 2
    astore = AlertStore(cfg)
    assert {e.status for e in astore.outbox_entries()} == {"sent"}
    assert sorted((e.window_start.day, e.rule, e.status) for e in astore.events_between()) == [
        (4, "CostSpike", "firing"),
        (4, "ErrorRateHigh", "firing"),
        (4, "LatencyP95High", "firing"),
        (5, "CostSpike", "resolved"),
        (5, "ErrorRateHigh", "resolved"),
        (5, "LatencyP95High", "resolved"),
    ]
    [state] = [s for s in astore.states().values() if s.rule == "ErrorRateHigh"]
    assert state.status == "resolved" and state.notified_status == "resolved"
    assert state.active_since == dt.datetime(2026, 11, 4)


@pytest.mark.usefixtures("secrets")
def test_an_entry_another_run_is_sending_is_left_to_it(
    tmp_path: Path, smtp: SmtpServer, slack: SlackServer, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import aimon.tasks.alerts.pipeline as alerts_mod
    from aimon.tasks.alerts.delivery import DeliveryReport, deliver

    cfg = alerts_cfg(tmp_path, smtp.port, cert[0], slack, rules=[RULES[0]])
    run_day(cfg, 0, figures(0.31, 2.0), send=True)
    assert len(slack.requests) == 1 and len(smtp.messages) == 1
    # Queue one more (the resolved notice) without delivering, as a run that died after committing.
    store = Store(cfg)
    window = daily_window(D0 + dt.timedelta(days=1))
    store.replace_window(window, figures(0.01, 2.0), "run01")
    astore = AlertStore(cfg)
    with monkeypatch.context() as m:  # the run dies after committing, before delivering
        m.setattr(alerts_mod, "deliver", lambda *a, **k: DeliveryReport())
        alert_window(cfg, store, window, "run01", send=True, now=NOW)
    pending = astore.outbox_entries("pending")
    assert len(pending) == 2
    for e in pending:  # another run holds them
        assert astore.claim(e.outbox_id, "other-run", NOW, dt.timedelta(minutes=5))
    report = deliver(cfg, astore, now=NOW + dt.timedelta(minutes=1))
    assert report.sent == () and len(slack.requests) == 1 and len(smtp.messages) == 1
    # Its lease runs out (that run died): the next delivery sends each entry once.
    report = deliver(cfg, astore, now=NOW + dt.timedelta(minutes=6))
    assert len(report.sent) == 2 and len(slack.requests) == 2 and len(smtp.messages) == 2
    assert deliver(cfg, astore, now=NOW + dt.timedelta(minutes=7)).sent == ()


@pytest.mark.usefixtures("secrets")
def test_cli_history_shows_what_was_sent_and_what_failed(
    tmp_path: Path, cert: tuple[Path, Path], slack: SlackServer
) -> None:
    import yaml
    from typer.testing import CliRunner

    from aimon.cli import app

    cfg = alerts_cfg(tmp_path, free_port(), cert[0], slack, rules=[RULES[0]], send_attempts=1)
    run_day(cfg, 0, figures(0.31, 2.0))
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", by_alias=True, exclude={"source"})))
    runner = CliRunner()
    res = runner.invoke(app, ["alerts", "history", "--config", str(path)])
    assert res.exit_code == 0, res.output
    assert "oncall -> oncall-slack" in res.output and "sent" in res.output
    assert "oncall -> oncall-email" in res.output and "pending" in res.output and "unreachable" in res.output
    res = runner.invoke(app, ["alerts", "history", "--status", "sent", "--config", str(path)])
    assert "oncall-email" not in res.output and "ErrorRateHigh" in res.output
    res = runner.invoke(app, ["alerts", "list", "--config", str(path)])
    assert "ErrorRateHigh" in res.output and "firing" in res.output
    res = runner.invoke(app, ["alerts", "history", "--windows", "--config", str(path)])
    assert "2026-11-01" in res.output and "31.00%" in res.output
