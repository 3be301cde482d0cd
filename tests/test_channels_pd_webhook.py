"""The PagerDuty (Events API v2) and webhook (Alertmanager JSON) channels, against
real HTTP servers on loopback speaking those APIs (tests/pd_servers.py), through the
real alert pipeline: rules -> state -> outbox -> channels. The webhook body is also
compared with what a real Alertmanager (Debian's prometheus-alertmanager) posts for
the same alerts."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aimon.config import Config
from aimon.errors import ConfigError, SendError
from aimon.store.alerts import AlertStore
from aimon.tasks.alerts.channel_http import retry_after_seconds
from aimon.tasks.alerts.channel_pagerduty import PagerDutyChannel
from aimon.tasks.alerts.channel_webhook import WebhookChannel
from tests import promstack
from tests.alert_days import ERROR_RATE_HIGH, LATENCY_P95_HIGH, run_day
from tests.alert_days import gpt4o_figures as figures
from tests.conftest import make_config
from tests.pd_servers import PagerDutyServer, WebhookServer

ROUTING_KEY = "e93facc04764012d7bfb002500d5d1a6"  # an Events API v2 integration key is 32 characters
HOOK_TOKEN = "Bearer hook-token-5b1e"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

RULES = [ERROR_RATE_HIGH, LATENCY_P95_HIGH]


@pytest.fixture
def pd() -> Iterator[PagerDutyServer]:
    server = PagerDutyServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    server = WebhookServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch, hook: WebhookServer) -> None:
    monkeypatch.setenv("AIMON_TEST_PD_KEY", ROUTING_KEY)
    monkeypatch.setenv("AIMON_TEST_HOOK_URL", hook.url)
    monkeypatch.setenv("AIMON_TEST_HOOK_HEADERS", f"Authorization: {HOOK_TOKEN}\nX-Team: ml")


def config(tmp_path: Path, pd: PagerDutyServer, **kw: Any) -> Config:
    alerts = {
        "rules": kw.pop("rules", RULES),
        "routes": [{"name": "oncall", "channels": kw.pop("route_channels", ["pd", "hook"])}],
        "channels": {
            "pd": {
                "type": "pagerduty",
                "routing_key_env": "AIMON_TEST_PD_KEY",
                "url": pd.url,
                "severity_map": {"warning": "error"},
                "timeout_seconds": 5,
                **kw.pop("pd_spec", {}),
            },
            "hook": {
                "type": "webhook",
                "url_env": "AIMON_TEST_HOOK_URL",
                "headers_env": "AIMON_TEST_HOOK_HEADERS",
                "timeout_seconds": 5,
            },
        },
        "retry_backoff_seconds": 0.01,
        "resolve_after": 1,
        "link": "https://grafana.example.com/d/aimon",
        **kw,
    }
    # SQLite: the same store code as DuckDB, three times faster to set up per window here.
    return make_config(f"sqlite:///{tmp_path / 'store.sqlite'}", alerts=alerts)


def alert_ids(cfg: Config) -> dict[str, str]:
    return {s.rule: s.alert_id for s in AlertStore(cfg).states().values()}


def check_alertmanager_shape(body: dict[str, Any]) -> None:
    """Alertmanager's webhook payload, version 4 (prometheus.io/docs/alerting/latest/configuration/#webhook_config)."""
    assert set(body) == {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
    assert body["version"] == "4" and isinstance(body["groupKey"], str) and isinstance(body["truncatedAlerts"], int)
    assert body["status"] in ("firing", "resolved") and isinstance(body["receiver"], str)
    assert isinstance(body["externalURL"], str)
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in body[key].items()), key
    assert body["alerts"]
    for a in body["alerts"]:
        assert set(a) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
        assert a["status"] in ("firing", "resolved")
        assert all(isinstance(v, str) for v in [*a["labels"].values(), *a["annotations"].values()])
        assert RFC3339.match(a["startsAt"]) and RFC3339.match(a["endsAt"]), (a["startsAt"], a["endsAt"])
        assert (a["endsAt"] == "0001-01-01T00:00:00Z") == (a["status"] == "firing")
        assert isinstance(a["generatorURL"], str) and a["fingerprint"]
    # Firing when any alert of the group fires; common labels are in every alert.
    assert body["status"] == ("firing" if any(a["status"] == "firing" for a in body["alerts"]) else "resolved")
    for a in body["alerts"]:
        assert body["commonLabels"].items() <= a["labels"].items()


# -- the pipeline --------------------------------------------------------------------------------


def test_trigger_then_resolve_with_the_alert_id_as_dedup_key_and_alertmanager_json(
    tmp_path: Path, pd: PagerDutyServer, hook: WebhookServer
) -> None:
    cfg = config(tmp_path, pd)
    for day in range(3):
        assert not run_day(cfg, day, figures(0.01, 2.0)).firing
    assert pd.requests == [] and hook.requests == []

    report = run_day(cfg, 3, figures(0.31, 6.0))  # 2026-11-04: errors 31% > 5%, p95 3x its median
    assert len(report.firing) == 2 and report.delivery.failed == ()
    ids = alert_ids(cfg)
    triggers = {e["payload"]["class"]: e for e in pd.accepted()}
    assert set(triggers) == {"ErrorRateHigh", "LatencyP95High"} and len(pd.requests) == 2
    assert {r: e["dedup_key"] for r, e in triggers.items()} == ids
    err, lat = triggers["ErrorRateHigh"], triggers["LatencyP95High"]
    assert {e["event_action"] for e in triggers.values()} == {"trigger"}
    assert err["routing_key"] == ROUTING_KEY
    # aimon's critical is PagerDuty's critical; warning was mapped to error in the config.
    assert err["payload"]["severity"] == "critical" and lat["payload"]["severity"] == "error"
    assert err["payload"]["summary"] == "ErrorRateHigh: gpt-4o fails 31.0% of requests"
    assert err["payload"]["source"] == "aimon" and err["payload"]["timestamp"] == "2026-11-05T00:00:00Z"
    details = err["payload"]["custom_details"]
    assert details["labels"] == {"model": "gpt-4o", "endpoint": "__all__"}
    assert details["value"] == pytest.approx(0.31) and details["condition"] == "> 5.00%"
    assert "2026-11-04" in details["window"]
    assert "= 3 s" in lat["payload"]["custom_details"]["condition"]  # the bound: 1.5x the median 2 s
    assert {link["href"] for link in err["links"]} == {
        "https://runbooks.example.com/llm-errors",
        "https://grafana.example.com/d/aimon",
    }
    assert [link["href"] for link in lat["links"]] == ["https://grafana.example.com/d/aimon"]  # it has no runbook
    assert pd.opened == 2 and len(pd.open_alerts()) == 2

    [fired] = hook.requests
    check_alertmanager_shape(fired.body)
    assert fired.headers["Authorization"] == HOOK_TOKEN and fired.headers["X-Team"] == "ml"
    assert fired.body["status"] == "firing" and fired.body["receiver"] == "hook"
    assert fired.body["groupKey"] == '{}:{granularity="daily", route="oncall"}'
    assert fired.body["externalURL"] == "https://grafana.example.com/d/aimon"
    by_rule = {a["labels"]["alertname"]: a for a in fired.body["alerts"]}
    assert {r: a["fingerprint"] for r, a in by_rule.items()} == ids
    assert by_rule["ErrorRateHigh"]["labels"] == {
        "alertname": "ErrorRateHigh",
        "severity": "critical",
        "metric": "llm_error_rate",
        "route": "oncall",
        "granularity": "daily",
        "model": "gpt-4o",
        "endpoint": "__all__",
    }
    assert by_rule["ErrorRateHigh"]["annotations"]["runbook_url"] == "https://runbooks.example.com/llm-errors"
    assert by_rule["ErrorRateHigh"]["startsAt"] == "2026-11-04T00:00:00Z"
    assert fired.body["commonLabels"] == {"route": "oncall", "granularity": "daily", "model": "gpt-4o"}

    run_day(cfg, 3, figures(0.31, 6.0))  # a rerun of the window: nothing new anywhere
    assert len(pd.requests) == 2 and len(hook.requests) == 1

    report = run_day(cfg, 4, figures(0.01, 2.0))  # clean: both resolve, under the same dedup_keys
    assert len(report.resolved) == 2 and report.delivery.failed == ()
    resolves = pd.accepted()[2:]
    assert {e["event_action"] for e in resolves} == {"resolve"}
    assert {e["dedup_key"] for e in resolves} == set(ids.values())
    assert pd.open_alerts() == [] and pd.opened == 2
    resolved = hook.requests[1].body
    check_alertmanager_shape(resolved)
    assert resolved["status"] == "resolved" and {a["endsAt"] for a in resolved["alerts"]} == {"2026-11-06T00:00:00Z"}
    assert {a["fingerprint"] for a in resolved["alerts"]} == set(ids.values())

    run_day(cfg, 5, figures(0.01, 2.0))
    assert len(pd.requests) == 4 and len(hook.requests) == 2
    assert {e.status for e in AlertStore(cfg).outbox_entries()} == {"sent"}


def test_a_repeat_triggers_the_alert_still_open_under_its_dedup_key(tmp_path: Path, pd: PagerDutyServer) -> None:
    cfg = config(tmp_path, pd, rules=[RULES[0]], route_channels=["pd"], repeat_windows=1)
    run_day(cfg, 0, figures(0.31, 2.0))
    run_day(cfg, 1, figures(0.40, 2.0))  # still firing: re-sent after 1 window
    first, repeat = pd.accepted()
    assert first["dedup_key"] == repeat["dedup_key"] and repeat["event_action"] == "trigger"
    assert repeat["payload"]["summary"] == "ErrorRateHigh (still firing, day 2): gpt-4o fails 40.0% of requests"
    [alert] = pd.alerts.values()
    assert pd.opened == 1 and alert.triggers == 2 and alert.status == "triggered"
    run_day(cfg, 2, figures(0.01, 2.0))
    assert pd.accepted()[-1]["event_action"] == "resolve" and pd.open_alerts() == [] and pd.opened == 1


def test_429_with_retry_after_is_waited_out_and_delivered_once(tmp_path: Path, pd: PagerDutyServer) -> None:
    cfg = config(tmp_path, pd, rules=[RULES[0]], route_channels=["pd"])
    pd.plan = [(429, {"Retry-After": "1"})]
    report = run_day(cfg, 0, figures(0.31, 2.0))
    assert report.delivery.failed == () and len(report.delivery.sent) == 1
    assert [r.status for r in pd.requests] == [429, 202]
    assert pd.requests[1].at - pd.requests[0].at >= 1.0  # waited the Retry-After
    assert pd.opened == 1 and len(pd.accepted()) == 1


def test_5xx_is_retried_and_stays_queued_then_goes_out_once_on_the_next_run(
    tmp_path: Path, pd: PagerDutyServer
) -> None:
    cfg = config(tmp_path, pd, rules=[RULES[0]], route_channels=["pd"], send_attempts=2)
    pd.plan = [(500, {}), (503, {})]
    report = run_day(cfg, 0, figures(0.31, 2.0))
    assert [r.status for r in pd.requests] == [500, 503]  # send_attempts: 2, within the run
    [failed] = report.delivery.failed
    assert "HTTP 503 to the trigger of ErrorRateHigh{endpoint=__all__, model=gpt-4o}" in failed
    [pending] = AlertStore(cfg).outbox_entries("pending")
    assert pending.attempts == 2 and ROUTING_KEY not in (pending.last_error or "")
    report = run_day(cfg, 1, figures(0.01, 2.0))  # the next run: the queued trigger, then the resolve
    assert report.delivery.failed == ()
    assert [e["event_action"] for e in pd.accepted()] == ["trigger", "resolve"]
    assert pd.opened == 1 and pd.open_alerts() == []
    run_day(cfg, 2, figures(0.01, 2.0))
    assert len(pd.accepted()) == 2 and {e.status for e in AlertStore(cfg).outbox_entries()} == {"sent"}


def test_an_accepted_event_is_not_sent_again_when_its_notification_is_retried(
    tmp_path: Path, pd: PagerDutyServer
) -> None:
    cfg = config(tmp_path, pd, route_channels=["pd"])
    for day in range(3):
        run_day(cfg, day, figures(0.01, 2.0))
    pd.plan = [None, (502, {})]  # the first alert's trigger goes, the second's fails once
    report = run_day(cfg, 3, figures(0.31, 6.0))
    assert report.delivery.failed == () and [r.status for r in pd.requests] == [202, 502, 202]
    keys = [e["dedup_key"] for e in pd.accepted()]
    assert len(keys) == len(set(keys)) == 2 and pd.opened == 2


def test_400_is_not_retried_and_says_why_without_the_key(
    tmp_path: Path, pd: PagerDutyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIMON_TEST_PD_KEY", "short-key-xyz")  # not an integration key
    cfg = config(tmp_path, pd, rules=[RULES[0]], route_channels=["pd"], send_attempts=3)
    report = run_day(cfg, 0, figures(0.31, 2.0))
    assert [r.status for r in pd.requests] == [400]  # one attempt: resending cannot help
    [failed] = report.delivery.failed
    assert "rejected 1 event(s), not retried: HTTP 400 to the trigger of ErrorRateHigh" in failed
    assert "Length of 'routing_key' is incorrect (should be 32 characters)" in failed
    assert "short-key-xyz" not in failed
    [pending] = AlertStore(cfg).outbox_entries("pending")  # kept: once the key is fixed, it still goes
    assert pending.attempts == 1 and pd.opened == 0


def test_429_without_retry_after_or_too_long_is_left_to_the_outbox(tmp_path: Path, pd: PagerDutyServer) -> None:
    cfg = config(tmp_path, pd, pd_spec={"max_retry_after_seconds": 5})
    channel = PagerDutyChannel("pd", cfg.alerts.channels["pd"])  # type: ignore[arg-type]
    for headers in ({}, {"Retry-After": "120"}):
        pd.requests.clear()
        pd.plan = [(429, headers)]
        with pytest.raises(SendError) as info:
            channel.send(PAYLOAD)
        assert info.value.transient and "HTTP 429" in str(info.value) and len(pd.requests) == 1
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", dt.datetime(2015, 10, 21, 7, 27, tzinfo=dt.UTC)) == 60
    assert retry_after_seconds("soon") is None


def test_pagerduty_unreachable_is_transient(tmp_path: Path, pd: PagerDutyServer) -> None:
    cfg = config(tmp_path, pd, pd_spec={"url": f"http://127.0.0.1:{promstack.free_port()}/v2/enqueue"})
    with pytest.raises(SendError) as info:
        PagerDutyChannel("pd", cfg.alerts.channels["pd"]).send(PAYLOAD)  # type: ignore[arg-type]
    assert info.value.transient and "unreachable" in str(info.value)


# -- the webhook on its own ---------------------------------------------------------------------

PAYLOAD: dict[str, Any] = {
    "route": "oncall",
    "run_id": "abc123",
    "granularity": "daily",
    "window": "daily 2024-03-05 (UTC) [2024-03-05 00:00, 2024-03-06 00:00) UTC",
    "window_label": "2024-03-05 (UTC)",
    "window_start": "2024-03-05T00:00:00",
    "window_end": "2024-03-06T00:00:00",
    "firing": 2,
    "resolved": 0,
    "link": "https://grafana.example.com/d/aimon",
    "store": "table monitoring_metrics at duckdb:///x.duckdb",
    "items": [
        {
            "alert_id": "5d0e2d5b7f6f0b7c4c2e8d2b9b1f0a3e6c7d8e9f",
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
            "since": "2024-03-05T00:00:00",
            "fired_window_start": "2024-03-05T00:00:00",
            "for_windows": 1,
            "runbook": "https://runbooks.example.com/llm-errors",
            "firing_for": None,
        },
        {
            "alert_id": "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
            "rule": "ErrorRateHigh",
            "status": "firing",
            "repeat": True,
            "severity": "critical",
            "metric": "llm_error_rate",
            "labels": {"model": "claude-3-5-sonnet", "endpoint": "__all__"},
            "value": 0.12,
            "value_text": "12.00%",
            "condition": "> 5.00%",
            "summary": "claude-3-5-sonnet fails 12.0% of requests",
            "since": "2024-03-03T00:00:00",
            "fired_window_start": "2024-03-03T00:00:00",
            "for_windows": 1,
            "runbook": "https://runbooks.example.com/llm-errors",
            "firing_for": "day 3",
        },
    ],
}


def _webhook(monkeypatch: pytest.MonkeyPatch, hook: WebhookServer, **kw: Any) -> WebhookChannel:
    spec = {"type": "webhook", "url_env": "AIMON_TEST_HOOK_URL", "headers_env": "AIMON_TEST_HOOK_HEADERS", **kw}
    cfg = make_config("duckdb:///unused.duckdb", alerts={"channels": {"hook": spec}})
    return WebhookChannel("hook", cfg.alerts.channels["hook"])  # type: ignore[arg-type]


def test_webhook_json_has_the_shape_a_real_alertmanager_posts(
    tmp_path: Path, hook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same alerts through a real Alertmanager 0.25 (grouped by route and
    granularity, as aimon groups) and through aimon's webhook channel: the same keys,
    types, group key, common labels and annotations, status and times."""
    ours = _webhook(monkeypatch, hook).body(PAYLOAD)
    check_alertmanager_shape(ours)
    am_hook = WebhookServer().start()
    cfg = tmp_path / "am.yml"
    cfg.write_text(
        json.dumps(
            {
                "route": {
                    "receiver": "hook",
                    "group_by": ["granularity", "route"],
                    "group_wait": "0s",
                    "group_interval": "1s",
                    "repeat_interval": "1h",
                },
                "receivers": [{"name": "hook", "webhook_configs": [{"url": am_hook.url, "send_resolved": True}]}],
            }
        )
    )
    am = promstack.start_alertmanager(tmp_path, cfg)
    try:

        def post(alerts: list[dict[str, Any]]) -> None:
            req = urllib.request.Request(
                f"{am.url}/api/v2/alerts",
                data=json.dumps(alerts).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 200

        sent = [{k: a[k] for k in ("labels", "annotations", "startsAt", "generatorURL")} for a in ours["alerts"]]
        post(sent)
        promstack.wait_for(lambda: am_hook.requests, "Alertmanager's webhook", timeout=20, interval=0.05)
        theirs = am_hook.requests[0].body
        # Resolved: the same alerts with an end in the past.
        post([{**a, "endsAt": "2024-03-06T00:00:00Z"} for a in sent])
        promstack.wait_for(lambda: len(am_hook.requests) > 1, "the resolved webhook", timeout=20, interval=0.05)
        theirs_resolved = am_hook.requests[-1].body
    finally:
        am.stop()
        am_hook.stop()
    check_alertmanager_shape(theirs)
    assert set(ours) == set(theirs)
    assert {k: type(v) for k, v in ours.items()} == {k: type(v) for k, v in theirs.items()}
    for key in ("version", "groupKey", "status", "groupLabels", "commonLabels", "commonAnnotations", "truncatedAlerts"):
        assert ours[key] == theirs[key], key
    mine = sorted(ours["alerts"], key=lambda a: a["labels"]["model"])
    am_alerts = sorted(theirs["alerts"], key=lambda a: a["labels"]["model"])
    for a, b in zip(mine, am_alerts, strict=True):
        assert set(a) == set(b)
        for key in ("status", "labels", "annotations", "startsAt", "endsAt", "generatorURL"):
            assert a[key] == b[key], key
    resolved_payload = {**PAYLOAD, "items": [{**i, "status": "resolved", "repeat": False} for i in PAYLOAD["items"]]}
    ours_resolved = _webhook(monkeypatch, hook).body(resolved_payload)
    check_alertmanager_shape(theirs_resolved)
    assert ours_resolved["status"] == theirs_resolved["status"] == "resolved"
    assert {a["endsAt"] for a in ours_resolved["alerts"]} == {a["endsAt"] for a in theirs_resolved["alerts"]}


def test_webhook_posts_with_its_auth_header_and_truncates_to_max_alerts(
    hook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _webhook(monkeypatch, hook, max_alerts=1, receiver="ml-oncall").send(PAYLOAD)
    [req] = hook.requests
    assert req.path == WebhookServer.path and req.headers["Authorization"] == HOOK_TOKEN
    assert req.body["receiver"] == "ml-oncall" and req.body["truncatedAlerts"] == 1 and len(req.body["alerts"]) == 1
    check_alertmanager_shape(req.body)
    repeat = _webhook(monkeypatch, hook).body(PAYLOAD)["alerts"][1]
    assert repeat["annotations"]["summary"].endswith("(still firing, day 3)")
    assert repeat["startsAt"] == "2024-03-03T00:00:00Z"


def test_webhook_failures_are_classified_and_mask_the_url_and_header(
    hook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = _webhook(monkeypatch, hook)
    hook.plan = [(500, {}), (401, {})]
    with pytest.raises(SendError) as info:
        channel.send(PAYLOAD)
    assert info.value.transient and "HTTP 500" in str(info.value)
    with pytest.raises(SendError) as info:
        channel.send(PAYLOAD)
    assert not info.value.transient and "HTTP 401" in str(info.value)
    for text in (str(info.value),):
        assert "aimon-7f3c2b" not in text and "hook-token" not in text and f"127.0.0.1:{hook.port}" in text
    hook.plan = [(429, {"Retry-After": "0"})]
    channel.send(PAYLOAD)
    assert [r.status for r in hook.requests[-2:]] == [429, 200] and len(hook.delivered()) == 1


# -- config --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "pagerduty"}, "'alerts.channels.c.pagerduty'.*needs routing_key_env"),
        (
            {"type": "pagerduty", "routing_key_env": "K", "severity_map": {"warning": "high"}},
            "severity_map.warning: 'high' is not a PagerDuty severity; valid: critical, error, warning, info",
        ),
        (
            {"type": "pagerduty", "routing_key_env": "K", "severity_map": {"page": "critical"}},
            "severity_map: 'page' is not an aimon severity",
        ),
        ({"type": "pagerduty", "routing_key": ROUTING_KEY}, "unknown key 'alerts.channels.c.pagerduty.routing_key'"),
        (
            {"type": "pagerduty", "routing_key_env": "K", "url": "events.pagerduty.com"},
            "'alerts.channels.c.pagerduty.url'",
        ),
        ({"type": "webhook"}, "needs exactly one of url_env, url_secret or url"),
        ({"type": "webhook", "url": "https://x.example.com/h", "url_env": "U"}, r"\(got url_env, url\)"),
        (
            {"type": "webhook", "url": "https://x", "headers_env": "H", "headers_secret": "h"},
            "headers_env or headers_secret",
        ),
        ({"type": "webhok", "url": "https://x"}, "'pagerduty', 'webhook'"),
    ],
)
def test_config_errors_name_the_key(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_config("duckdb:///unused.duckdb", alerts={"channels": {"c": spec}})


def test_secret_errors_name_the_variable(hook: WebhookServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIMON_TEST_PD_KEY")
    cfg = make_config(
        "duckdb:///unused.duckdb",
        alerts={"channels": {"pd": {"type": "pagerduty", "routing_key_env": "AIMON_TEST_PD_KEY"}}},
    )
    with pytest.raises(SendError, match="environment variable AIMON_TEST_PD_KEY is not set"):
        PagerDutyChannel("pd", cfg.alerts.channels["pd"])  # type: ignore[arg-type]
    monkeypatch.setenv("AIMON_TEST_HOOK_HEADERS", "Bearer-without-a-name")
    with pytest.raises(SendError, match=r"headers \(AIMON_TEST_HOOK_HEADERS\): line 1 is not 'Name: value'") as info:
        _webhook(monkeypatch, hook)
    assert "Bearer-without-a-name" not in str(info.value)
    monkeypatch.setenv("AIMON_TEST_HOOK_URL", "not a url")
    monkeypatch.setenv("AIMON_TEST_HOOK_HEADERS", "")
    with pytest.raises(SendError, match="environment variable AIMON_TEST_HOOK_URL does not hold an http"):
        _webhook(monkeypatch, hook)
