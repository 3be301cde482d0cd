"""Alert rules as plain functions: matchers, conditions against an independent numpy
computation, `for` streaks, the state machine, config errors, rendering, the CLI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from aimon.cli import app
from aimon.cli.alerts import parse_until
from aimon.config import load_config
from aimon.config.alerts import AlertRule, parse_duration
from aimon.errors import ConfigError
from aimon.matchers import Matcher
from aimon.records import labels_json
from aimon.store.alerts import AlertState
from aimon.tasks.alerts.render import describe_condition, fmt_value
from aimon.tasks.alerts.rules import Condition, Judgement, evaluate_rule, judge, previous_windows
from aimon.tasks.alerts.state import transition
from aimon.windows import daily_window, window_containing
from tests.conftest import make_config

REPO = Path(__file__).resolve().parent.parent


def rule(**kw: Any) -> AlertRule:
    spec = {"name": "R", "metric": "m", "op": ">", "threshold": 1.0, **kw}
    return AlertRule.model_validate(spec)


# -- matchers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, labels, want",
    [
        ("model=gpt-4o", {"model": "gpt-4o"}, True),
        ("model=gpt-4o", {"model": "gpt-4o-mini"}, False),
        ("endpoint!=__all__", {"endpoint": "chat"}, True),
        ("endpoint!=__all__", {}, True),  # absent label matches as ""
        ("endpoint=", {}, True),
        ("model=~gpt-.*", {"model": "gpt-4o-mini"}, True),
        ("model=~gpt", {"model": "gpt-4o"}, False),  # anchored, as in Prometheus
        ("model!~claude.*", {"model": "gpt-4o"}, True),
        ('model="gpt-4o"', {"model": "gpt-4o"}, True),
    ],
)
def test_matchers(text: str, labels: dict[str, str], want: bool) -> None:
    assert Matcher.parse(text).matches(labels) is want


def test_matcher_errors_say_the_syntax() -> None:
    with pytest.raises(ValueError, match="key=value, key!=value"):
        Matcher.parse("model")
    with pytest.raises(ValueError, match="bad regular expression"):
        Matcher.parse("model=~(")
    assert Matcher.from_config("endpoint", "!=__all__") == Matcher("endpoint", "!=", "__all__")


# -- conditions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("op", [">", ">=", "<", "<="])
def test_threshold_ops(op: str) -> None:
    r = rule(op=op, threshold=5.0)
    expected = {
        ">": (False, False, True),
        ">=": (False, True, True),
        "<": (True, False, False),
        "<=": (True, True, False),
    }
    assert tuple(judge(r, v, []).breaching for v in (4.0, 5.0, 6.0)) == expected[op]


def test_baseline_matches_numpy_median_factor_and_percent() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        hist = list(rng.lognormal(1.0, 0.5, size=int(rng.integers(3, 10))))
        value = float(rng.lognormal(1.2, 0.6))
        med = float(np.median(hist))
        r = rule(threshold=None, baseline={"windows": 10, "min_windows": 3, "factor": 1.5})
        c = judge(r, value, hist)
        assert c.baseline == pytest.approx(med) and c.bound == pytest.approx(1.5 * med)
        assert c.breaching is (value > 1.5 * med) and c.baseline_windows == len(hist)
        down = rule(op="<", threshold=None, baseline={"windows": 10, "min_windows": 3, "percent": 20})
        cd = judge(down, value, hist)
        assert cd.bound == pytest.approx(0.8 * med) and cd.breaching is (value < 0.8 * med)


def test_threshold_and_baseline_both_must_hold() -> None:
    r = rule(threshold=2.0, baseline={"windows": 3, "min_windows": 2, "factor": 1.5})
    assert not judge(r, 1.8, [1.0, 1.0]).breaching  # 1.8x the median but under 2.0
    assert not judge(r, 2.5, [2.0, 2.0]).breaching  # over 2.0 but only 1.25x
    assert judge(r, 3.1, [2.0, 2.0]).breaching


def test_too_little_history_does_not_fire_and_says_why() -> None:
    r = rule(threshold=None, baseline={"windows": 7, "min_windows": 3, "factor": 1.5})
    c = judge(r, 100.0, [1.0, 1.0])
    assert not c.breaching and c.note is not None and "2 of the 3" in c.note


def test_for_streak_counts_consecutive_windows_and_a_gap_breaks_it() -> None:
    r = rule(threshold=0.05, **{"for": 3})
    w = daily_window(dt.date(2026, 11, 10))
    prev = previous_windows(w, 2)
    lj = labels_json({"model": "a"})
    cur = [({"model": "a"}, 0.2)]
    [j] = evaluate_rule(r, w, cur, {(lj, prev[0].start): 0.3, (lj, prev[1].start): 0.3}, prev)
    assert j.streak == 3 and j.state == "firing" and j.streak_start == prev[1].start
    [j] = evaluate_rule(r, w, cur, {(lj, prev[1].start): 0.3}, prev)  # the window before is missing
    assert j.streak == 1 and j.state == "pending"
    [j] = evaluate_rule(r, w, cur, {(lj, prev[0].start): 0.01, (lj, prev[1].start): 0.3}, prev)
    assert j.streak == 1


def test_previous_windows_cross_a_dst_change() -> None:
    w = window_containing(dt.datetime(2026, 3, 30, 12), "daily", "Europe/Berlin")
    prev = previous_windows(w, 2)
    assert [p.end for p in prev] == [w.start, prev[0].start]
    assert (prev[0].end - prev[0].start) == dt.timedelta(hours=23)  # 29 March 2026 is 23 h in Berlin


# -- state machine ----------------------------------------------------------------------------------


def _j(r: AlertRule, value: float, breaching: bool, start: dt.datetime | None) -> Judgement:
    return Judgement(r, (("model", "a"),), value, Condition(breaching, 0.05, 0.05), 1 if breaching else 0, start)


def test_transitions_fire_rerun_repeat_resolve() -> None:
    r = rule(threshold=0.05)
    w1, w2 = daily_window(dt.date(2026, 11, 1)), daily_window(dt.date(2026, 11, 2))
    w5 = daily_window(dt.date(2026, 11, 5))
    t = transition(_j(r, 0.3, True, w1.start), None, w1, "r1", repeat_interval=dt.timedelta(days=3), silence=None)
    assert t is not None and t.notify == "firing" and t.state.status == "firing"
    rerun = transition(
        _j(r, 0.3, True, w1.start), t.state, w1, "r2", repeat_interval=dt.timedelta(days=3), silence=None
    )
    assert rerun is not None and rerun.notify is None
    nxt = transition(_j(r, 0.3, True, w2.start), t.state, w2, "r3", repeat_interval=dt.timedelta(days=3), silence=None)
    assert nxt is not None and nxt.notify is None and nxt.state.active_since == w1.start
    rep = transition(
        _j(r, 0.3, True, w5.start), nxt.state, w5, "r4", repeat_interval=dt.timedelta(days=3), silence=None
    )
    assert rep is not None and rep.notify == "firing" and rep.repeat
    w6 = daily_window(dt.date(2026, 11, 6))
    res = transition(_j(r, 0.01, False, None), rep.state, w6, "r5", repeat_interval=dt.timedelta(days=3), silence=None)
    assert res is not None and res.notify == "resolved" and res.state.status == "resolved"
    again = transition(
        _j(r, 0.01, False, None), res.state, w6, "r6", repeat_interval=dt.timedelta(days=3), silence=None
    )
    assert again is not None and again.notify is None and again.state.status == "resolved"


def test_a_silenced_alert_is_not_notified_and_its_resolution_neither() -> None:
    r = rule(threshold=0.05)
    w1, w2 = daily_window(dt.date(2026, 11, 1)), daily_window(dt.date(2026, 11, 2))
    t = transition(_j(r, 0.3, True, w1.start), None, w1, "r1", repeat_interval=dt.timedelta(hours=4), silence="s1")
    assert t is not None and t.notify is None and t.state.status == "firing" and t.state.notified_status is None
    res = transition(_j(r, 0.0, False, None), t.state, w2, "r2", repeat_interval=dt.timedelta(hours=4), silence=None)
    assert res is not None and res.notify is None  # the route never heard it fire


def test_state_of_a_never_breaching_series_is_not_created() -> None:
    r = rule(threshold=0.05)
    w = daily_window(dt.date(2026, 11, 1))
    assert (
        transition(_j(r, 0.01, False, None), None, w, "r", repeat_interval=dt.timedelta(hours=1), silence=None) is None
    )
    pending = AlertState("id", "R", "daily", "{}", "m", "warning", "default", "pending", 1.0, 1.0, w.start, w.start)
    w2 = daily_window(dt.date(2026, 11, 2))
    t = transition(_j(r, 0.01, False, None), pending, w2, "r", repeat_interval=dt.timedelta(hours=1), silence=None)
    assert t is not None and t.state.status == "inactive" and t.event is None and t.notify is None


# -- config ---------------------------------------------------------------------------------------


def _alerts(**kw: Any) -> Any:
    return make_config("duckdb:///x.duckdb", alerts=kw)


@pytest.mark.parametrize(
    "alerts, match",
    [
        (
            {"channels": {"s": {"type": "slack", "webhook_url": "https://hooks.slack.com/services/X"}}},
            "unknown key 'alerts.channels.s.slack.webhook_url'",
        ),
        ({"channels": {"s": {"type": "pager"}}}, "'slack', 'email'"),
        ({"channels": {"s": {"type": "slack"}}}, "webhook_url_env"),
        ({"channels": {"s": {"type": "slack", "token_env": "T"}}}, "needs 'channel'"),
        ({"routes": [{"name": "r", "channels": ["nope"]}]}, "route 'r' names channel 'nope'"),
        ({"rules": [{"name": "A", "metric": "m", "op": ">", "threshold": 1, "route": "x"}]}, "names route 'x'"),
        ({"rules": [{"name": "A", "metric": "m", "op": "!", "threshold": 1}]}, "alerts.rules.0.op"),
        ({"rules": [{"name": "A", "metric": "m", "op": ">"}]}, "needs a threshold, a baseline, or both"),
        ({"rules": [{"name": "A", "metric": "m", "op": ">", "threshold": 1, "summary": "{0}"}]}, "named fields"),
        ({"rules": [{"name": "A", "metric": "m", "op": ">", "threshold": 1, "labels": {"k": "=~("}}]}, "regular"),
        (
            {"rules": [{"name": "A", "metric": "m", "op": ">", "baseline": {"windows": 3, "factor": 1, "percent": 2}}]},
            "exactly one of factor or percent",
        ),
        ({"repeat_interval": "soon"}, "not a duration"),
        (
            {"rules": [{"name": "A", "metric": "m", "op": ">", "threshold": 1}] * 2},
            "rule names must be unique: A",
        ),
    ],
)
def test_bad_alert_config_names_the_key(alerts: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        _alerts(**alerts)
    assert match in str(info.value)


def test_durations() -> None:
    assert parse_duration("90s") == dt.timedelta(seconds=90)
    assert parse_duration("4h") == dt.timedelta(hours=4)
    assert parse_duration("2d") == dt.timedelta(days=2)
    assert parse_duration(30) == dt.timedelta(seconds=30)


def test_shipped_rules() -> None:
    cfg = load_config(REPO / "configs" / "monitoring.yaml")
    names = {r.name for r in cfg.alerts.rules}
    assert {"LatencyP95High", "ErrorRateHigh", "BudgetExceeded", "MonitoringRunFailed"} <= names
    assert {"DataDriftDetected", "QualityDrop", "SampleRatioMismatch"} <= names
    assert all(not r.channels for r in cfg.alerts.routes)  # the demo sends nothing


# -- rendering ----------------------------------------------------------------------------------------


def test_values_read_in_their_units() -> None:
    assert fmt_value("llm_error_rate", 0.0612) == "6.12%"
    assert fmt_value("llm_budget_used_ratio", 1.25) == "125.00%"
    assert fmt_value("llm_cost_usd", 1234.5) == "$1,234.50"
    assert fmt_value("llm_latency_seconds", 8.7651) == "8.77 s"
    assert fmt_value("llm_requests", 19992.0) == "19,992"
    assert fmt_value("m", None) == "absent"


def test_condition_text() -> None:
    r = rule(threshold=1.0, baseline={"windows": 7, "min_windows": 3, "factor": 1.5}, metric="llm_latency_seconds")
    r = r.model_copy(update={"for_windows": 2})
    assert describe_condition(r, 5.25, 3.5, 5) == (
        "> 1 s and > 1.5x the median 3.5 s of the previous 7 windows, 5 stored = 5.25 s, for 2 consecutive windows"
    )


def test_until_takes_a_timestamp_in_the_configured_zone_or_a_duration() -> None:
    now = dt.datetime(2026, 11, 29, 10, 0)
    assert parse_until("2h", "UTC", now) == dt.datetime(2026, 11, 29, 12, 0)
    assert parse_until("2026-12-01T09:00", "Europe/Berlin", now) == dt.datetime(2026, 12, 1, 8, 0)
    assert parse_until("2026-12-01T09:00+00:00", "Europe/Berlin", now) == dt.datetime(2026, 12, 1, 9, 0)
    with pytest.raises(ValueError, match="neither a timestamp"):
        parse_until("tomorrow", "UTC", now)


# -- CLI ------------------------------------------------------------------------------------------------


def test_cli_silence_list_unsilence(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"warehouse": {"url": f"duckdb:///{tmp_path / 'w.duckdb'}"}}))
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            *("alerts", "silence", "--config", str(cfg), "-m", "alertname=CostSpike", "-m", "model=~claude.*"),
            *("--until", "3h", "--comment", "prompt change", "--author", "ana"),
        ],
    )
    assert res.exit_code == 0, res.output
    sid = res.output.split()[1].rstrip(":")
    res = runner.invoke(app, ["alerts", "list", "--config", str(cfg)])
    assert res.exit_code == 0 and sid in res.output and "alertname=CostSpike model=~claude.*" in res.output
    assert "no alerts firing or pending" in res.output
    assert runner.invoke(app, ["alerts", "unsilence", sid, "--config", str(cfg)]).exit_code == 0
    res = runner.invoke(app, ["alerts", "list", "--config", str(cfg)])
    assert "no silences in force" in res.output
    res = runner.invoke(app, ["alerts", "unsilence", sid, "--config", str(cfg)])
    assert res.exit_code == 1 and "no active silence" in res.output
    res = runner.invoke(
        app, ["alerts", "silence", "--config", str(cfg), "-m", "model", "--until", "1h", "--comment", "x"]
    )
    assert res.exit_code == 2 and "bad --matcher" in res.output
    res = runner.invoke(
        app, ["alerts", "silence", "--config", str(cfg), "-m", "a=b", "--until", "2020-01-01", "--comment", "x"]
    )
    assert res.exit_code == 2 and "in the past" in res.output
    res = runner.invoke(app, ["alerts", "history", "--config", str(cfg)])
    assert res.exit_code == 0 and "no notifications recorded" in res.output


def test_a_firing_alert_stays_firing_while_it_breaches_even_if_the_streak_count_restarts() -> None:
    r = rule(threshold=0.05, **{"for": 2})
    w1, w2 = daily_window(dt.date(2026, 11, 1)), daily_window(dt.date(2026, 11, 2))
    firing = Judgement(r, (("model", "a"),), 0.3, Condition(True, 0.05, 0.05), 2, w1.start - dt.timedelta(days=1))
    t = transition(firing, None, w1, "r1", repeat_interval=dt.timedelta(days=3), silence=None)
    assert t is not None and t.state.status == "firing"
    # The next window breaches but its history has a gap, so the streak counts 1 (< for).
    t2 = transition(_j(r, 0.3, True, w2.start), t.state, w2, "r2", repeat_interval=dt.timedelta(days=3), silence=None)
    assert t2 is not None and t2.state.status == "firing" and t2.notify is None
    assert t2.state.active_since == w1.start - dt.timedelta(days=1)


def test_a_rule_for_another_granularity_is_not_judged(tmp_path: Path) -> None:
    from aimon.records import MetricRecord
    from aimon.store.alerts import AlertStore
    from aimon.store.metrics import Store
    from aimon.tasks.alerts.pipeline import alert_window

    rules = [
        {"name": "DailyOnly", "metric": "m", "op": ">", "threshold": 1, "granularity": "daily"},
        {"name": "Any", "metric": "m", "op": ">", "threshold": 1},
    ]
    cfg = make_config(f"duckdb:///{tmp_path / 's.duckdb'}", alerts={"rules": rules})
    store = Store(cfg)
    store.ensure()
    hour = window_containing(dt.datetime(2026, 11, 1, 13, 30), "hourly")
    store.replace_window(hour, [MetricRecord.of("m", 5.0)], "r")
    report = alert_window(cfg, store, hour, "r", send=True)
    assert [f.split()[0] for f in report.firing] == ["Any"]
    [event] = AlertStore(cfg).events_between()
    assert (event.rule, event.granularity, event.window_start) == ("Any", "hourly", dt.datetime(2026, 11, 1, 13))


def test_config_check_says_which_channel_secret_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, duck_url: str
) -> None:
    monkeypatch.setenv("AIMON_TEST_HOOK", "https://hooks.slack.com/services/T/B/zzz")
    monkeypatch.delenv("AIMON_TEST_SMTP_PW", raising=False)
    channels = {
        "s": {"type": "slack", "webhook_url_env": "AIMON_TEST_HOOK"},
        "e": {
            "type": "email",
            "host": "127.0.0.1",
            "username": "u",
            "password_env": "AIMON_TEST_SMTP_PW",
            "sender": "a@example.com",
            "recipients": ["b@example.com"],
        },
    }
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"warehouse": {"url": duck_url}, "alerts": {"channels": channels}}))
    res = CliRunner().invoke(app, ["config", "check", "--config", str(cfg)])
    assert res.exit_code == 1
    assert "alert channel s (slack): secrets found" in res.output
    assert "environment variable AIMON_TEST_SMTP_PW is not set" in res.output
    assert "zzz" not in res.output
