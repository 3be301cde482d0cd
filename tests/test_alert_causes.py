"""Likely causes and next steps in notifications (tasks/alerts/causes.py): a seeded store
of operational and cost figures (built by the analyzers' own record functions, so the
labels are the real ones), the breakdown checked against shares worked out by hand,
and the default config's hints carried to a real Slack-shaped server and SMTP server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from aimon.config import Config
from aimon.config.alerts import AlertRule
from aimon.config.loader import packaged_config, parse_config
from aimon.records import ALL, MetricRecord
from aimon.store.metrics import Store
from aimon.tasks.alerts.causes import likely_causes
from aimon.tasks.alerts.pipeline import alert_window
from aimon.tasks.cost import cost_records
from aimon.tasks.operational import operational_records
from aimon.tasks.orchestration.context import rollup
from aimon.windows import daily_window, window_containing
from tests.servers import SlackServer, SmtpServer, free_port, self_signed_cert

D0 = dt.date(2026, 3, 2)
NOW = dt.datetime(2026, 3, 12, 12, 0)
PASSWORD = "s3cret-pw"

# requests and errors by type per (model, endpoint) of one day
NORMAL = {
    ("gpt-4o", "chat"): (1000, {"timeout": 6, "rate_limit_exceeded": 4}),
    ("gpt-4o", "search"): (500, {"timeout": 3, "rate_limit_exceeded": 2}),
    ("claude-3-5-sonnet", "chat"): (800, {"timeout": 8}),
}
BURST = {
    ("gpt-4o", "chat"): (1000, {"timeout": 30, "rate_limit_exceeded": 80}),
    ("gpt-4o", "search"): (600, {"timeout": 10, "rate_limit_exceeded": 10}),
    ("claude-3-5-sonnet", "chat"): (800, {"timeout": 8}),
}


def ops(day: dict[tuple[str, str], tuple[int, dict[str, int]]]) -> list[MetricRecord]:
    rows = []
    for (model, endpoint), (n, errors) in day.items():
        rows.append((model, endpoint, "ok", n - sum(errors.values())))
        rows += [(model, endpoint, t, k) for t, k in errors.items()]
    counts = pd.DataFrame(rows, columns=["model", "endpoint", "status", "n"])
    quantiles = pd.DataFrame(columns=["model", "endpoint", "quantile", "value", "n"])
    return operational_records(counts, quantiles, 1440.0)


# spend, requests, input and output tokens per (model, endpoint) of one day
SPEND = {
    ("gpt-4o", "chat"): (20.0, 1000, 500_000, 100_000),
    ("gpt-4o", "search"): (5.0, 500, 200_000, 20_000),
    ("claude-3-5-sonnet", "chat"): (8.0, 800, 300_000, 50_000),
}
SPIKE = {
    ("gpt-4o", "chat"): (80.0, 1040, 520_000, 400_000),
    ("gpt-4o", "search"): (8.0, 500, 200_000, 20_000),
    ("claude-3-5-sonnet", "chat"): (8.0, 800, 300_000, 50_000),
}


def spend(day: dict[tuple[str, str], tuple[float, int, int, int]]) -> list[MetricRecord]:
    leaf = pd.DataFrame(
        [(m, e, c, n, i, o, 0) for (m, e), (c, n, i, o) in day.items()],
        columns=["model", "endpoint", "cost", "requests", "input_tokens", "output_tokens", "unpriced"],
    )
    totals = rollup(leaf, ["cost", "requests", "input_tokens", "output_tokens", "unpriced"])
    recs = cost_records(totals, ["input_tokens", "output_tokens"])
    recs += [
        MetricRecord.of("llm_requests", r.requests, model=r.model, endpoint=r.endpoint) for r in totals.itertuples()
    ]
    return recs


def default_data(tmp_path: Path) -> dict[str, Any]:
    data = yaml.safe_load(packaged_config().read_text())
    data["warehouse"]["url"] = f"duckdb:///{tmp_path / 'store.duckdb'}"
    return data


def seed(cfg: Config, days: list[list[MetricRecord]]) -> Store:
    store = Store(cfg)
    store.ensure()
    for i, recs in enumerate(days):
        store.replace_window(daily_window(D0 + dt.timedelta(days=i)), recs, f"run{i}")
    return store


def rule(cfg: Config, name: str, **changes: Any) -> AlertRule:
    r = next(r for r in cfg.alerts.rules if r.name == name)
    return r.model_copy(update=changes)


def test_error_burst_on_one_endpoint_and_error_type_is_attributed_with_its_shares(tmp_path: Path) -> None:
    cfg = parse_config(default_data(tmp_path))
    store = seed(cfg, [ops(NORMAL)] * 7 + [ops(BURST)])
    window = daily_window(D0 + dt.timedelta(days=7))
    causes = likely_causes(store, window, rule(cfg, "ErrorRateHigh"), {"model": "gpt-4o", "endpoint": ALL})
    # By hand. Baseline rate of gpt-4o on chat 10/1000, on search 5/500: at the burst's
    # requests 10 and 6 errors expected, 110 and 20 seen: 100 and 14 extra of 114.
    assert [c.kind for c in causes] == ["endpoint", "error_type"]
    ep = causes[0]
    assert ep.parts[0].name == "/chat" and ep.parts[0].share == pytest.approx(100 / 114)
    assert ep.text == "/chat: 88% of the extra errors"  # 88% covers 80%: search (12%) left out
    # gpt-4o's baseline: 6 rate-limit and 9 timeout errors a day of 1500 requests; at
    # 1600 requests 6.4 and 9.6 expected, 90 and 40 seen: 83.6 and 30.4 extra of 114.
    et = causes[1]
    assert [(p.name, p.share) for p in et.parts] == [
        ("rate_limit_exceeded", pytest.approx(83.6 / 114)),
        ("timeout", pytest.approx(30.4 / 114)),
    ]
    assert et.text == "error type rate_limit_exceeded: 73% of the extra errors; timeout: 27%"
    # The same burst seen from every model: the model x endpoint that carries it.
    overall = likely_causes(store, window, rule(cfg, "ErrorRateHigh"), {"model": ALL, "endpoint": ALL})
    assert overall[0].kind == "model/endpoint"
    assert overall[0].parts[0].name == "gpt-4o on /chat" and overall[0].parts[0].share == pytest.approx(100 / 114)
    # A still-firing alert is explained against the windows before it began, not itself.
    later = seed(cfg, [ops(NORMAL)] * 7 + [ops(BURST)] * 3)
    again = likely_causes(
        later,
        daily_window(D0 + dt.timedelta(days=9)),
        rule(cfg, "ErrorRateHigh"),
        {"model": "gpt-4o", "endpoint": ALL},
        since=window.start,
    )
    assert again[0].parts[0].share == pytest.approx(100 / 114)


def test_hours_that_carry_the_extra_errors_of_a_daily_window(tmp_path: Path) -> None:
    cfg = parse_config(default_data(tmp_path))
    store = seed(cfg, [ops(NORMAL)] * 7 + [ops(BURST)])
    day = daily_window(D0 + dt.timedelta(days=7))
    for h in range(24):  # the day's hourly windows: 100 requests an hour, 60 errors at 14:00 and 15:00
        hour = window_containing(day.start + dt.timedelta(hours=h), "hourly")
        store.replace_window(hour, ops({("gpt-4o", "chat"): (100, {"timeout": 60 if h in (14, 15) else 1})}), f"h{h}")
    causes = likely_causes(store, day, rule(cfg, "ErrorRateHigh"), {"model": "gpt-4o", "endpoint": ALL})
    # gpt-4o's baseline rate is 15/1500 = 1%: 1 error expected an hour, 59 extra at 14 and 15.
    hours = next(c for c in causes if c.kind == "hour")
    assert [(p.name, p.share) for p in hours.parts] == [("2026-03-09T14:00:00", 0.5), ("2026-03-09T15:00:00", 0.5)]
    assert hours.text == "hours 14:00-16:00 UTC: 100% of the extra errors"


def test_cost_spike_is_attributed_to_its_endpoint_model_and_token_type(tmp_path: Path) -> None:
    cfg = parse_config(default_data(tmp_path))
    store = seed(cfg, [spend(SPEND)] * 7 + [spend(SPIKE)])
    window = daily_window(D0 + dt.timedelta(days=7))
    spike = rule(cfg, "CostSpike")
    causes = {c.kind: c for c in likely_causes(store, window, spike, {"model": "gpt-4o", "endpoint": ALL})}
    # By hand: chat $20 -> $80 (+60), search $5 -> $8 (+3): 60/63 of the extra spend.
    assert causes["endpoint"].parts[0].name == "/chat"
    assert causes["endpoint"].parts[0].share == pytest.approx(60 / 63)
    # Output tokens 120k -> 420k (+300k), input 700k -> 720k (+20k): 300/320 of the extra.
    tok = causes["token_type"]
    assert tok.parts[0].name == "output" and tok.parts[0].share == pytest.approx(300 / 320)
    assert tok.text.startswith("output tokens (+250%): 94% of the extra tokens")
    # $25 over 1500 requests -> $88 over 1540: 40 more requests at the old $25/1500
    # explain $0.67 of the $63, the spend per request the other $62.33.
    traffic = causes["traffic"]
    assert traffic.parts[0].name.startswith("spend per request")
    assert traffic.parts[0].share == pytest.approx((1540 * (88 / 1540 - 25 / 1500)) / 63)
    # Every model's spend: the model x endpoint that carries it.
    every = rule(cfg, "CostSpike", labels={})
    found = {c.kind: c for c in likely_causes(store, window, every, {"model": ALL, "endpoint": ALL})}
    first = found["model/endpoint"]
    assert first.parts[0].name == "gpt-4o on /chat"
    assert first.parts[0].share == pytest.approx(60 / 63)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp(tls: tuple[Path, Path]) -> Iterator[tuple[SmtpServer, Path]]:
    cert, key = tls
    server = SmtpServer(free_port(), cert, key, password=PASSWORD).start()
    try:
        yield server, cert
    finally:
        server.stop()


def sending(data: dict[str, Any], slack: SlackServer, smtp: SmtpServer, cert: Path) -> Config:
    data["alerts"]["channels"] = {
        "team-slack": {"type": "slack", "webhook_url_env": "AIMON_TEST_SLACK_WEBHOOK", "max_retries": 0},
        "oncall-email": {
            "type": "email",
            "host": "127.0.0.1",
            "port": smtp.port,
            "ca_file": str(cert),
            "username": "aimon",
            "password_env": "AIMON_TEST_SMTP_PASSWORD",
            "sender": "aimon@example.com",
            "recipients": ["oncall@example.com"],
            "timeout_seconds": 5,
        },
    }
    data["alerts"]["routes"] = [{"name": "default", "channels": ["team-slack", "oncall-email"]}]
    data["alerts"]["link"] = "https://grafana.example.com/d/aimon"
    return parse_config(data)


def burst_notification(cfg: Config, slack: SlackServer, smtp: SmtpServer) -> tuple[str, str, str]:
    store = seed(cfg, [ops(NORMAL)] * 7 + [ops(BURST)])
    report = alert_window(cfg, store, daily_window(D0 + dt.timedelta(days=7)), "run7", send=True, now=NOW)
    assert report.delivery.sent and not report.delivery.failed
    (request,) = slack.delivered()
    slack_text = "\n".join(b["text"]["text"] for b in request.body["blocks"] if b["type"] == "section")
    (msg,) = smtp.messages
    plain = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return slack_text, plain, html


def test_causes_and_the_configs_hints_reach_slack_and_email(
    tmp_path: Path, slack: SlackServer, smtp: tuple[SmtpServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIMON_TEST_SMTP_PASSWORD", PASSWORD)
    cfg = sending(default_data(tmp_path), slack, *smtp)
    hints = rule(cfg, "ErrorRateHigh").hints
    assert hints  # the default config has next steps for error alerts
    slack_text, plain, html = burst_notification(cfg, slack, smtp[0])
    # gpt-4o's alert folds into the overall one, whose causes name the model x endpoint.
    for body in (slack_text, plain):
        assert "gpt-4o on /chat: 88% of the extra errors" in body
        assert "error type rate_limit_exceeded: 73% of the extra errors" in body
        for h in hints:
            assert h in body
    assert "*Likely causes*" in slack_text and "*Next steps*" in slack_text
    assert "likely causes:" in plain and "next steps:" in plain
    assert "<b>Next steps</b>" in html and "gpt-4o on /chat: 88% of the extra errors" in html
    assert "where to look next: https://grafana.example.com/d/aimon" in plain


def test_a_custom_hint_in_a_user_config_replaces_the_default(
    tmp_path: Path, slack: SlackServer, smtp: tuple[SmtpServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIMON_TEST_SMTP_PASSWORD", PASSWORD)
    data = default_data(tmp_path)
    default_hints = next(r for r in data["alerts"]["rules"] if r["name"] == "ErrorRateHigh")["hints"]
    for r in data["alerts"]["rules"]:
        if r["name"] == "ErrorRateHigh":
            r["hints"] = ["ask #llm-gateway: they own the provider keys"]
    cfg = sending(data, slack, *smtp)
    slack_text, plain, _ = burst_notification(cfg, slack, smtp[0])
    for body in (slack_text, plain):
        assert "ask #llm-gateway: they own the provider keys" in body
        assert not any(h in body for h in default_hints)


def test_no_causes_line_without_a_breakdown(
    tmp_path: Path, slack: SlackServer, smtp: tuple[SmtpServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIMON_TEST_SMTP_PASSWORD", PASSWORD)
    cfg = sending(default_data(tmp_path), slack, *smtp)
    window = daily_window(D0)
    # An error-rate series of one endpoint with no error-type figures: nothing to split.
    one = [
        MetricRecord.of("llm_requests", 400, model="m", endpoint="chat"),
        MetricRecord.of("llm_error_rate", 0.1, model="m", endpoint="chat"),
        MetricRecord.of("llm_errors", 40, model="m", endpoint="chat", error_type=ALL),
    ]
    store = seed(cfg, [one])
    assert likely_causes(store, window, rule(cfg, "ErrorRateHigh"), {"model": "m", "endpoint": "chat"}) == ()
    # A budget has no breakdown: the notification has its next steps but no causes line.
    over = [MetricRecord.of("llm_budget_used_ratio", 1.3, scope="total", period="day")]
    store.replace_window(window, over, "run0")
    assert likely_causes(store, window, rule(cfg, "BudgetExceeded"), {"scope": "total", "period": "day"}) == ()
    report = alert_window(cfg, store, window, "run0", send=True, now=NOW)
    assert report.delivery.sent
    (request,) = slack.delivered()
    slack_text = "\n".join(b["text"]["text"] for b in request.body["blocks"] if b["type"] == "section")
    plain = smtp[0].messages[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "BudgetExceeded" in plain and "next steps:" in plain and "*Next steps*" in slack_text
    assert "likely causes" not in plain and "Likely causes" not in slack_text


def quality(f1: dict[str, tuple[float, int]], drifted: tuple[str, ...] = ()) -> list[MetricRecord]:
    """model_f1 (macro) and its labelled rows per model, the all-models figure from them,
    and the drift verdicts of the window."""
    n_all = sum(n for _, n in f1.values())
    f_all = sum(v * n for v, n in f1.values()) / n_all
    recs = []
    for model, (v, n) in [*f1.items(), (ALL, (f_all, n_all))]:
        recs.append(MetricRecord.of("model_f1", v, model=model, average="macro"))
        recs.append(MetricRecord.of("quality_sample_size", n, metric="model_f1", model=model, average="macro"))
    recs += [MetricRecord.of("data_drift_detected", float(f in drifted), feature=f) for f in ("language", "user_tier")]
    return recs


def test_quality_drop_is_attributed_to_the_model_that_carries_it_and_names_the_input_drift(tmp_path: Path) -> None:
    cfg = parse_config(default_data(tmp_path))
    normal = quality({"a": (0.90, 300), "b": (0.85, 100)})
    store = seed(cfg, [normal] * 7 + [quality({"a": (0.60, 300), "b": (0.81, 100)}, drifted=("language",))])
    window = daily_window(D0 + dt.timedelta(days=7))
    causes = {
        c.kind: c for c in likely_causes(store, window, rule(cfg, "QualityDrop"), {"model": ALL, "average": "macro"})
    }
    # By hand: a's share of the labelled rows x its change, 0.75 x -0.30 = -0.225; b's
    # 0.25 x -0.04 = -0.01: a carries 0.225 / 0.235 of the drop.
    top = causes["model"].parts[0]
    assert top.name == "a" and top.share == pytest.approx(0.225 / 0.235)
    assert causes["drift"].text == "input drift in the same window: language"
    # A window without drift says that it checked.
    store2 = seed(
        parse_config(default_data(tmp_path / "two")), [normal] * 7 + [quality({"a": (0.6, 300), "b": (0.85, 100)})]
    )
    quiet = {
        c.kind: c for c in likely_causes(store2, window, rule(cfg, "QualityDrop"), {"model": ALL, "average": "macro"})
    }
    assert quiet["drift"].text == "no input drift in the same window (2 features checked)"


def latency(p95: dict[tuple[str, str], float]) -> list[MetricRecord]:
    counts = pd.DataFrame(
        [(m, e, "ok", n) for (m, e), (n, _) in NORMAL.items()], columns=["model", "endpoint", "status", "n"]
    )
    quantiles = pd.DataFrame(
        [(m, e, "0.95", v, NORMAL[(m, e)][0]) for (m, e), v in p95.items()],
        columns=["model", "endpoint", "quantile", "value", "n"],
    )
    return operational_records(counts, quantiles, 1440.0)


def test_a_latency_spike_of_one_model_on_one_endpoint_says_its_siblings_did_not_move(tmp_path: Path) -> None:
    """A p95 spike of gpt-4o on /chat: its other endpoint and the other models on /chat
    are as before, so it is this model here, not the provider or the inputs."""
    cfg = parse_config(default_data(tmp_path))
    base = {("gpt-4o", "chat"): 2.0, ("gpt-4o", "search"): 1.0, ("claude-3-5-sonnet", "chat"): 3.0}
    spike = {**base, ("gpt-4o", "chat"): 6.0, ("gpt-4o", "search"): 1.1}
    store = seed(cfg, [latency(base)] * 7 + [latency(spike)])
    window = daily_window(D0 + dt.timedelta(days=7))
    labels = {"model": "gpt-4o", "endpoint": "chat", "quantile": "0.95"}
    lines = [c.text for c in likely_causes(store, window, rule(cfg, "LatencyP95High"), labels)]
    assert "other endpoints of gpt-4o: p95 +10%" in lines
    assert "other models on /chat: p95 +0%" in lines
