"""One incident, one page: resolve_after, repeat timing in windows, folding within a
rule and across rules (inhibit_rules), the folded series in the parent's Slack and
email message, a folded child promoted when its parent resolves; on a real store
(SQLite, and DuckDB for an older store's columns), a local Slack-shaped server and a
real SMTP server (aiosmtpd)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from aimon.config import Config
from aimon.errors import ConfigError
from aimon.records import MetricRecord
from aimon.store.alerts import AlertStore
from aimon.store.metrics import Store
from aimon.tasks.alerts.folding import is_rollup_of
from aimon.tasks.alerts.pipeline import AlertReport, alert_window
from aimon.tasks.alerts.state import alert_id
from aimon.windows import Window, daily_window, window_containing
from tests.conftest import make_config
from tests.servers import SlackServer, SmtpServer, free_port, self_signed_cert

REPO = Path(__file__).resolve().parent.parent
D0 = dt.date(2026, 11, 1)
NOW = dt.datetime(2026, 11, 30, 12, 0)
PASSWORD = "s3cret-pw"

ERRORS = {
    "name": "ErrorRateHigh",
    "metric": "llm_error_rate",
    "labels": {"endpoint": "__all__"},
    "op": ">",
    "threshold": 0.05,
    "severity": "critical",
}
COST = {
    "name": "CostSpike",
    "metric": "llm_cost_usd",
    "labels": {"model": "!=__all__"},
    "op": ">",
    "threshold": 100,
}


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp(cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    monkeypatch.setenv("AIMON_TEST_SMTP_PASSWORD", PASSWORD)
    server = SmtpServer(free_port(), *cert, password=PASSWORD).start()
    try:
        yield server
    finally:
        server.stop()


def config(
    tmp_path: Path, rules: list[dict[str, Any]], *, email: tuple[int, Path] | None = None, db: str = "sqlite", **kw: Any
) -> Config:
    channels: dict[str, Any] = {"slack": {"type": "slack", "webhook_url_env": "AIMON_TEST_SLACK_WEBHOOK"}}
    if email is not None:
        channels["email"] = {
            "type": "email",
            "host": "127.0.0.1",
            "port": email[0],
            "ca_file": str(email[1]),
            "username": "aimon",
            "password_env": "AIMON_TEST_SMTP_PASSWORD",
            "sender": "aimon@example.com",
            "recipients": ["oncall@example.com"],
            "timeout_seconds": 5,
        }
    alerts = {
        "rules": rules,
        "routes": [{"name": "default", "channels": list(channels)}],
        "channels": channels,
        "retry_backoff_seconds": 0.01,
        **kw,
    }
    # SQLite: a transaction is cheap there, and these tests run many windows. The
    # DuckDB store (the default) is the older-store test's.
    return make_config(f"{db}:///{tmp_path / ('store.' + db)}", alerts=alerts)


def run(cfg: Config, window: Window | int, recs: list[MetricRecord], *, send: bool = True) -> AlertReport:
    w = daily_window(D0 + dt.timedelta(days=window)) if isinstance(window, int) else window
    store = Store(cfg)
    store.ensure()
    run_id = f"run-{w.start:%d%H}"
    store.replace_window(w, recs, run_id)
    return alert_window(cfg, store, w, run_id, send=send, now=NOW)


def err(model: str, v: float) -> MetricRecord:
    return MetricRecord.of("llm_error_rate", v, model=model, endpoint="__all__")


def cost(model: str, endpoint: str, v: float) -> MetricRecord:
    return MetricRecord.of("llm_cost_usd", v, model=model, endpoint=endpoint)


def events(cfg: Config, rule: str) -> list[tuple[int, str]]:
    return [(day(e.window_start), e.status) for e in AlertStore(cfg).events_between() if e.rule == rule]


def day(ts: dt.datetime) -> int:
    return (ts.date() - D0).days


def sections(req: Any) -> str:
    return "\n".join(b["text"]["text"] for b in req.body["blocks"] if b["type"] == "section")


# -- resolve_after ------------------------------------------------------------------------------


def test_a_firing_alert_resolves_only_after_resolve_after_clean_windows(tmp_path: Path, slack: SlackServer) -> None:
    # ErrorRateHigh takes the default (2); a rule of its own says 1.
    quick = {**ERRORS, "name": "ErrorRateQuick", "severity": "warning", "resolve_after": 1}
    cfg = config(tmp_path, [ERRORS, quick])
    assert cfg.alerts.resolve_after == 2
    run(cfg, 1, [err("a", 0.30)])
    assert len(slack.requests) == 1  # both fire: one grouped message
    day2 = run(cfg, 2, [err("a", 0.01)])
    assert [a.split(" ")[0] for a in day2.resolved] == ["ErrorRateQuick"]
    assert len(day2.recovering) == 1 and "1 of 2 windows back within bounds" in day2.recovering[0]
    assert "alert recovering: ErrorRateHigh" in "\n".join(day2.lines())
    [state] = [s for s in AlertStore(cfg).states().values() if s.rule == "ErrorRateHigh"]
    assert state.status == "firing" and state.ok_windows == 1
    # A rerun of the clean window counts it once, not twice.
    again = run(cfg, 2, [err("a", 0.01)])
    assert len(again.recovering) == 1 and not any(a.startswith("ErrorRateHigh") for a in again.resolved)
    # Breaching again before resolve_after: still the same firing alert, nothing new to send
    # about it (the messages of days 2-4 are ErrorRateQuick resolving, firing, resolving).
    run(cfg, 3, [err("a", 0.20)])
    run(cfg, 4, [err("a", 0.01)])
    assert len(slack.requests) == 4
    assert all("ErrorRateHigh" not in sections(r) for r in slack.requests[1:])
    day5 = run(cfg, 5, [err("a", 0.01)])
    assert [a.split(" ")[0] for a in day5.resolved] == ["ErrorRateHigh"]
    assert "RESOLVED" in sections(slack.requests[-1]) and "ErrorRateHigh" in sections(slack.requests[-1])
    assert events(cfg, "ErrorRateHigh") == [
        (1, "firing"),
        (2, "recovering"),
        (3, "firing"),
        (4, "recovering"),
        (5, "resolved"),
    ]
    sent = len(slack.requests)
    run(cfg, 5, [err("a", 0.01)])  # rerun of the resolving window
    run(cfg, 4, [err("a", 0.01)])  # and of an older one, behind the state
    assert len(slack.requests) == sent
    assert events(cfg, "ErrorRateHigh")[-2:] == [(4, "recovering"), (5, "resolved")]
    [state] = [s for s in AlertStore(cfg).states().values() if s.rule == "ErrorRateHigh"]
    assert state.status == "resolved" and day(state.resolved_window_start) == 5  # type: ignore[arg-type]


# -- repeat timing in windows -------------------------------------------------------------------


def test_a_still_firing_daily_alert_is_re_sent_every_3_windows_saying_which_day(
    tmp_path: Path, slack: SlackServer
) -> None:
    cfg = config(tmp_path, [ERRORS])
    assert cfg.alerts.repeat_windows == 3 and cfg.alerts.repeat_interval is None
    sent_on = []
    for day in range(1, 9):
        before = len(slack.requests)
        run(cfg, day, [err("a", 0.30)])
        if len(slack.requests) > before:
            sent_on.append(day)
    assert sent_on == [1, 4, 7]
    first, repeat, last = (sections(r) for r in slack.requests)
    assert "still firing" not in first
    assert "ErrorRateHigh` (still firing, day 4)" in repeat and "(still firing, day 7)" in last
    run(cfg, 7, [err("a", 0.30)])  # a rerun of a repeat window re-sends nothing
    assert len(slack.requests) == 3


def test_hourly_repeats_count_hours_and_a_rule_can_repeat_sooner(tmp_path: Path, slack: SlackServer) -> None:
    cfg = config(tmp_path, [{**ERRORS, "repeat_windows": 2}], repeat_interval=None)
    start = dt.datetime(2026, 11, 3, 5)
    texts = []
    for h in range(5):
        w = window_containing(start + dt.timedelta(hours=h), "hourly")
        before = len(slack.requests)
        run(cfg, w, [err("a", 0.30)])
        if len(slack.requests) > before:
            texts.append(sections(slack.requests[-1]))
    assert len(texts) == 3 and "(still firing, hour 3)" in texts[1] and "(still firing, hour 5)" in texts[2]


# -- folding --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "parent, child, want",
    [
        ({"model": "a", "endpoint": "__all__"}, {"model": "a", "endpoint": "chat"}, True),
        ({"model": "__all__"}, {"model": "__all__", "experiment": "e", "variant": "b"}, True),
        ({"model": "__all__", "average": "macro"}, {"model": "m", "average": "macro"}, True),
        ({"model": "a", "endpoint": "chat"}, {"model": "a", "endpoint": "chat"}, False),  # itself
        ({"model": "b", "endpoint": "__all__"}, {"model": "a", "endpoint": "chat"}, False),
        ({"model": "a", "endpoint": "chat"}, {"model": "a", "endpoint": "__all__"}, False),  # the other way
        ({"model": "a", "quantile": "0.95"}, {"model": "a"}, False),  # a label the child lacks
        ({"average": "macro"}, {"average": "weighted", "model": "a"}, False),
    ],
)
def test_roll_up_relation(parent: dict[str, str], child: dict[str, str], want: bool) -> None:
    assert is_rollup_of(parent, child) is want


def test_series_fold_into_their_firing_roll_up_and_the_message_lists_them(
    tmp_path: Path, slack: SlackServer, smtp: SmtpServer, cert: tuple[Path, Path]
) -> None:
    cfg = config(tmp_path, [COST], email=(smtp.port, cert[0]))
    recs = [
        cost("a", "__all__", 350.0),
        cost("a", "chat", 200.0),
        cost("a", "summarize", 150.0),
        cost("c", "__all__", 99.0),  # under the threshold: c's chat spike pages on its own
        cost("c", "chat", 120.0),
    ]
    report = run(cfg, 1, recs)
    assert len(report.firing) == 2 and len(report.folded) == 2
    lines = report.lines()
    assert (
        "alert folded: CostSpike llm_cost_usd{endpoint=chat, model=a} = $200.00 (warning) "
        "into CostSpike{endpoint=__all__, model=a} (roll-up)"
    ) in lines
    parent = alert_id("CostSpike", "daily", '{"endpoint":"__all__","model":"a"}')
    states = AlertStore(cfg).states()
    folded = [s for s in states.values() if s.status == "folded"]
    assert sorted(json.loads(s.labels)["endpoint"] for s in folded) == ["chat", "summarize"]
    assert {s.folded_into for s in folded} == {parent}
    evs = {e.labels: e for e in AlertStore(cfg).events_between()}
    chat = evs['{"endpoint":"chat","model":"a"}']
    assert chat.status == "folded" and chat.folded_into == parent and "folded into CostSpike{" in (chat.note or "")
    # One Slack message and one email: two alerts, the folded series under their parent.
    [msg] = slack.requests
    text = sections(msg)
    assert text.count("*WARNING*") == 2
    assert "folded (2): {endpoint=chat, model=a} = $200.00; {endpoint=summarize, model=a} = $150.00" in text
    [mail] = smtp.messages
    assert mail["Subject"].startswith("[aimon] FIRING 2: CostSpike and 1 more")
    plain = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "    folded (2): {endpoint=chat, model=a} = $200.00; {endpoint=summarize, model=a} = $150.00" in plain
    assert "folded (2): {endpoint=chat" in mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    # c's own spike lists nothing folded.
    c_block = next(b for b in text.split("\n\n") if "model=c" in b) if "\n\n" in text else text
    assert "model=c" in c_block
    # A rerun folds the same way and sends nothing.
    again = run(cfg, 1, recs)
    assert again.folded == report.folded and len(slack.requests) == 1 and len(smtp.messages) == 1


def test_a_series_without_a_label_is_the_parent_of_the_series_with_it(tmp_path: Path, slack: SlackServer) -> None:
    rule = {"name": "QualityLow", "metric": "model_f1", "op": "<", "threshold": 0.8}
    cfg = config(tmp_path, [rule])
    recs = [
        MetricRecord.of("model_f1", 0.6, model="__all__", average="macro"),
        MetricRecord.of("model_f1", 0.5, model="__all__", average="macro", experiment="e", variant="b"),
        MetricRecord.of("model_f1", 0.55, model="gpt-4o", average="macro"),
        MetricRecord.of("model_f1", 0.9, model="__all__", average="macro", experiment="e", variant="a"),
    ]
    report = run(cfg, 1, recs)
    assert len(report.firing) == 1 and "model=__all__" in report.firing[0]
    assert len(report.folded) == 2
    assert "folded (2): {average=macro, experiment=e, model=__all__, variant=b} = 0.5; " in sections(slack.requests[0])


def test_an_inhibit_rule_folds_across_rules_on_equal_labels(tmp_path: Path, slack: SlackServer) -> None:
    by_type = {
        "name": "ErrorsByType",
        "metric": "llm_errors",
        "labels": {"endpoint": "__all__"},
        "op": ">",
        "threshold": 10,
        "severity": "warning",
    }
    inhibit = [{"source": {"alertname": "ErrorRateHigh"}, "target": {"alertname": "ErrorsByType"}, "equal": ["model"]}]
    cfg = config(tmp_path, [ERRORS, by_type], inhibit_rules=inhibit)
    recs = [
        err("a", 0.30),
        err("c", 0.01),
        MetricRecord.of("llm_errors", 40, model="a", endpoint="__all__", error_type="timeout"),
        MetricRecord.of("llm_errors", 25, model="c", endpoint="__all__", error_type="timeout"),  # c's rate is fine
    ]
    report = run(cfg, 1, recs)
    assert report.folded == (
        "ErrorsByType llm_errors{endpoint=__all__, error_type=timeout, model=a} = 40 (warning) "
        "into ErrorRateHigh{endpoint=__all__, model=a} (inhibit_rules.0)",
    )
    assert sorted(a.split(" ")[0] for a in report.firing) == ["ErrorRateHigh", "ErrorsByType"]
    text = sections(slack.requests[0])
    assert "folded (1): ErrorsByType{endpoint=__all__, error_type=timeout, model=a} = 40" in text
    assert "model=c" in text  # c's errors, with no firing ErrorRateHigh of c, page on their own


def test_the_shipped_inhibit_rules_fold_built_in_drift_under_the_operational_alert(
    tmp_path: Path, slack: SlackServer
) -> None:
    shipped = yaml.safe_load((REPO / "configs" / "monitoring.yaml").read_text())["alerts"]
    cfg = config(tmp_path, shipped["rules"], inhibit_rules=shipped["inhibit_rules"])
    recs = [
        err("a", 0.30),
        MetricRecord.of("llm_requests", 5000, model="a", endpoint="__all__"),  # the rule's minimum sample
        MetricRecord.of("data_drift_detected", 1, feature="error_type"),
        MetricRecord.of("data_drift_detected", 1, feature="latency_seconds"),  # no latency alert fires
        MetricRecord.of("data_drift_detected", 1, feature="language"),
        MetricRecord.of("data_drift_detected", 0, feature="input_tokens"),
    ]
    report = run(cfg, 1, recs)
    assert len(report.folded) == 1 and "feature=error_type" in report.folded[0]
    assert "into ErrorRateHigh{endpoint=__all__, model=a}" in report.folded[0]
    firing = sorted(a.split(" ")[1] for a in report.firing)
    assert firing == [
        "data_drift_detected{feature=language}",
        "data_drift_detected{feature=latency_seconds}",
        "llm_error_rate{endpoint=__all__,",
    ]


def test_the_shipped_srm_rule_sends_one_page_per_split_whichever_spans_are_off(
    tmp_path: Path, slack: SlackServer
) -> None:
    """A break flagged over the last 1, 3 and 7 windows (the cumulative split still
    fine) is one alert of the experiment, on the span-less ab_srm_detected; the next
    window, the 1-day span back to normal and the week's still off, it is the same alert
    (no new page); another experiment's split pages on its own."""
    shipped = yaml.safe_load((REPO / "configs" / "monitoring.yaml").read_text())["alerts"]
    cfg = config(tmp_path, shipped["rules"], inhibit_rules=shipped["inhibit_rules"])

    def srm(experiment: str, off: tuple[str, ...]) -> list[MetricRecord]:
        recs = [MetricRecord.of("ab_srm_detected", float(bool(off)), experiment=experiment)]
        recs += [
            MetricRecord.of("ab_srm_detected", float(s in off), experiment=experiment, span=s)
            for s in ("1d", "3d", "1w")
        ]
        return recs

    day1 = run(cfg, 1, srm("e", ("1d", "3d", "1w")) + srm("f", ("1d",)))
    assert sorted(a.split(" ")[1] for a in day1.firing) == [
        "ab_srm_detected{experiment=e}",
        "ab_srm_detected{experiment=f}",
    ]
    day2 = run(cfg, 2, srm("e", ("1w",)) + srm("f", ()))
    assert [a.split(" ")[1] for a in day2.firing] == ["ab_srm_detected{experiment=e}"]
    assert len(slack.requests) == 1  # day 2: still firing (no repeat yet), f resolving: nothing to send


def test_an_incident_keeps_the_alert_it_was_paged_with_when_a_broader_one_joins(
    tmp_path: Path, slack: SlackServer
) -> None:
    """Day 1 the chat endpoint's spend pages alone; day 2 the model's total crosses too.
    The total would be the roll-up parent, but the incident was paged already: the total
    folds into the endpoint's alert ("paged first") and nothing new is sent; its next
    repeat lists the total."""
    cfg = config(tmp_path, [COST])
    run(cfg, 1, [cost("a", "__all__", 90.0), cost("a", "chat", 250.0)])
    assert len(slack.requests) == 1
    day2 = run(cfg, 2, [cost("a", "__all__", 300.0), cost("a", "chat", 260.0)])
    assert len(day2.folded) == 1 and "endpoint=__all__" in day2.folded[0] and "(paged first)" in day2.folded[0]
    assert [a.split(" ")[1] for a in day2.firing] == ["llm_cost_usd{endpoint=chat,"]
    assert len(slack.requests) == 1  # no second page for the same incident


def test_a_folded_child_still_firing_takes_the_incident_over_when_its_parent_resolves(
    tmp_path: Path, slack: SlackServer
) -> None:
    """The model's total recovers first while its chat endpoint still breaches: the
    endpoint's alert takes the incident over without a new page, the total's RESOLVED
    is not sent (the incident is not over), and the route hears RESOLVED when the
    endpoint is back within bounds."""
    cfg = config(tmp_path, [COST])  # resolve_after 2
    run(cfg, 1, [cost("a", "__all__", 300.0), cost("a", "chat", 250.0)])
    assert len(slack.requests) == 1 and "folded (1)" in sections(slack.requests[0])
    # The total is back under the threshold (recovering), the endpoint still over: still folded.
    day2 = run(cfg, 2, [cost("a", "__all__", 90.0), cost("a", "chat", 250.0)])
    assert len(day2.folded) == 1 and len(day2.recovering) == 1 and len(slack.requests) == 1
    # The total resolves; the endpoint still breaches: it carries the incident on, unsent.
    day3 = run(cfg, 3, [cost("a", "__all__", 90.0), cost("a", "chat", 250.0)])
    assert day3.folded == () and len(day3.resolved) == 1 and len(day3.firing) == 1
    assert len(slack.requests) == 1
    assert events(cfg, "CostSpike") == [
        (1, "firing"),
        (1, "folded"),
        (2, "recovering"),
        (2, "folded"),
        (3, "resolved"),
        (3, "firing"),
    ]
    [note] = [e.note for e in AlertStore(cfg).events_between() if e.status == "firing" and '"chat"' in e.labels]
    assert note == "continues the incident of CostSpike{endpoint=__all__, model=a}, back within bounds"
    [child] = [s for s in AlertStore(cfg).states().values() if '"chat"' in s.labels]
    assert child.status == "firing" and child.folded_into is None and child.notified_status == "firing"
    assert child.fired_window_start is not None and day(child.fired_window_start) == 1  # the same incident
    # The endpoint back within bounds for resolve_after windows: the incident's RESOLVED.
    run(cfg, 4, [cost("a", "__all__", 90.0), cost("a", "chat", 80.0)])
    run(cfg, 5, [cost("a", "__all__", 90.0), cost("a", "chat", 80.0)])
    assert len(slack.requests) == 2
    text = sections(slack.requests[1])
    assert "RESOLVED" in text and "endpoint=chat, model=a" in text and "endpoint=__all__" not in text


# -- an older store, config errors ----------------------------------------------------------------


@pytest.mark.parametrize("db", ["duckdb", "sqlite"])
def test_a_store_from_before_the_new_columns_keeps_working(tmp_path: Path, slack: SlackServer, db: str) -> None:
    cfg = config(tmp_path, [ERRORS], db=db)
    run(cfg, 1, [err("a", 0.30)])
    astore = AlertStore(cfg)
    with astore.engine.begin() as conn:
        for table, cols in ((astore.state, ("ok_windows", "folded_into")), (astore.events, ("folded_into", "note"))):
            for c in cols:
                conn.execute(sa.text(f"ALTER TABLE {table.name} DROP COLUMN {c}"))
    # Read as before (the CLI and the report read without ensuring) ...
    [state] = AlertStore(cfg).states().values()
    assert state.status == "firing" and state.ok_windows == 0
    # ... and the next run adds the columns and carries on.
    day2 = run(cfg, 2, [err("a", 0.01)])
    assert len(day2.recovering) == 1
    assert events(cfg, "ErrorRateHigh") == [(1, "firing"), (2, "recovering")]


@pytest.mark.parametrize(
    "alerts, match",
    [
        ({"resolve_after": 0}, "alerts.resolve_after"),
        ({"repeat_windows": "often"}, "alerts.repeat_windows"),
        ({"rules": [{**ERRORS, "resolve_after": 0}]}, "alerts.rules.0.resolve_after"),
        ({"rules": [{**ERRORS, "repeat_windows": -1}]}, "alerts.rules.0.repeat_windows"),
        (
            {"inhibit_rules": [{"source": {}, "target": {"alertname": "X"}}]},
            "'alerts.inhibit_rules.0' in <test>: source: give at least one matcher",
        ),
        (
            {"inhibit_rules": [{"source": {"alertname": "A"}, "targets": {"alertname": "X"}}]},
            "unknown key 'alerts.inhibit_rules.0.targets'",
        ),
        (
            {"inhibit_rules": [{"source": {"a": "1"}, "target": {"k": "=~("}}]},
            "'alerts.inhibit_rules.0' in <test>: target.k: matcher k=~(: bad regular expression",
        ),
        (
            {
                "rules": [ERRORS],
                "inhibit_rules": [{"source": {"alertname": "ErrorRateHigh"}, "target": {"alertname": "Nope"}}],
            },
            "inhibit_rules.0.target.alertname: no rule named 'Nope'",
        ),
    ],
)
def test_bad_timing_and_inhibit_config_names_the_key(alerts: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_config("duckdb:///x.duckdb", alerts=alerts)
    assert match in str(info.value)
