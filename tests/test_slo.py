"""SLOs: the workbook's burn-rate arithmetic against hand computations on known counts,
the both-spans rule, the error budget over the period, the analyzer on a real DuckDB
warehouse and store, config errors that name the key, and `aimon slo rules` checked and
unit-tested by promtool."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from aimon.cli.app import app
from aimon.config import load_config, parse_config
from aimon.config.slos import SLOConfig, burn_checks, span_label
from aimon.errors import ConfigError
from aimon.records import MetricRecord
from aimon.store.metrics import Store
from aimon.tasks.orchestration.run import open_window
from aimon.tasks.slo import analyze_slo, slo_figures
from aimon.tasks.slo_rules import render_rules
from aimon.windows import Window, daily_window

REPO = Path(__file__).resolve().parent.parent
RULES_FILE = REPO / "deployments" / "prometheus" / "rules" / "slo.yml"
PROMTOOL = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
H = dt.timedelta(hours=1)
T0 = dt.datetime(2026, 11, 10)


def slo(**kw) -> SLOConfig:
    return SLOConfig(**{"name": "avail", "objective": 0.95, "sli": {"type": "availability"}, **kw})


def hour(i: int) -> Window:
    return Window(T0 + i * H, T0 + (i + 1) * H, "hourly")


def figs(recs: list[MetricRecord]) -> dict[tuple[str, str], float]:
    return {(r.metric, r.label("span") or r.label("tier") or ""): r.value for r in recs}


def hourly_history(bad: list[float], events: float = 1000.0) -> dict[dt.datetime, tuple[float, float]]:
    """Windows 0..len-1, each with `events` events of which bad[i] are bad."""
    return {hour(i).start: (events, events - b) for i, b in enumerate(bad)}


def test_workbook_factors_and_spans_per_granularity() -> None:
    # 30 days = 720 h: 2% in 1 h -> 0.02 x 720 = 14.4; 5% in 6 h -> 0.05 x 720 / 6 = 6; 10% in 3 d -> 0.1 x 10 = 1.
    got = {c.row.name: (c.factor, span_label(c.long), span_label(c.short)) for c in burn_checks(30 * 24 * H, "hourly")}
    assert got == {"fast": (14.4, "1h", "1h"), "slow": (6.0, "6h", "1h"), "ticket": (1.0, "3d", "6h")}
    daily = {c.row.name: (span_label(c.long), span_label(c.short)) for c in burn_checks(30 * 24 * H, "daily")}
    assert daily == {"fast": ("1d", "1d"), "slow": ("1d", "1d"), "ticket": ("3d", "1d")}
    # 28 days = 672 h: 13.44, 5.6, 0.933...
    f28 = [c.factor for c in burn_checks(28 * 24 * H, "hourly")]
    assert f28 == pytest.approx([0.02 * 672, 0.05 * 672 / 6, 0.1 * 672 / 72])


def test_burn_rates_equal_a_hand_computation() -> None:
    bad = [10.0 + (i * 7) % 23 for i in range(80)]  # 80 hourly windows, 1000 events each
    history = hourly_history(bad)
    w = hour(79)
    recs, _, _ = slo_figures(slo(), w, history)
    got = figs(recs)
    budget = 0.05
    assert got[("slo_events", "")] == 1000 and got[("slo_good_events", "")] == 1000 - bad[79]
    assert got[("slo_burn_rate", "1h")] == pytest.approx(bad[79] / 1000 / budget)
    assert got[("slo_burn_rate", "6h")] == pytest.approx(sum(bad[74:80]) / 6000 / budget)
    assert got[("slo_burn_rate", "3d")] == pytest.approx(sum(bad[8:80]) / 72000 / budget)
    # Budget over 30 days: only 80 windows exist; remaining = 1 - bad / (budget x events).
    assert got[("slo_error_budget_remaining", "")] == pytest.approx(1 - sum(bad) / (budget * 80_000))
    assert got[("slo_burn_alert", "page")] == 0 and got[("slo_burn_alert", "ticket")] == 0


def test_a_short_spike_alone_does_not_page_a_sustained_burn_does_and_it_resets() -> None:
    base = [10.0] * 80  # 1% errors: burn 0.2
    s = slo()
    # One hour at 40% errors: burn 8 over 1h (above the slow factor 6, below the fast 14.4),
    # but (8 + 5 x 0.2) / 6 = 1.5 over 6h: the slow check needs both spans.
    spike = [*base[:79], 400.0]
    recs, notes, _ = slo_figures(s, hour(79), hourly_history(spike))
    got = figs(recs)
    assert got[("slo_burn_rate", "1h")] == pytest.approx(8.0)
    assert got[("slo_burn_rate", "6h")] == pytest.approx((8 + 5 * 0.2) / 6)
    assert got[("slo_burn_alert", "page")] == 0
    # Six hours at 40%: both spans at 8 > 6 -> page (and the 3d span: (6 x 8 + 66 x 0.2) / 72 = 0.85 < 1, no ticket).
    sustained = base[:74] + [400.0] * 6
    recs, notes, _ = slo_figures(s, hour(79), hourly_history(sustained))
    got = figs(recs)
    assert got[("slo_burn_alert", "page")] == 1 and got[("slo_burn_alert", "ticket")] == 0
    assert any("page (slow burn)" in n and "8.0x over 6h" in n for n in notes), notes
    # The incident ends: the 6h span still burns at (5 x 8 + 0.2) / 6 = 6.7, but the 1h span is back at 0.2.
    ended = [*sustained, 10.0]
    got = figs(slo_figures(s, hour(80), hourly_history(ended))[0])
    assert got[("slo_burn_rate", "6h")] == pytest.approx((5 * 8 + 0.2) / 6)
    assert got[("slo_burn_alert", "page")] == 0
    # One hour at 80% errors (burn 16 > 14.4): the fast check, whose spans are both one hourly window.
    got = figs(slo_figures(s, hour(79), hourly_history([*base[:79], 800.0]))[0])
    assert got[("slo_burn_alert", "page")] == 1


def test_slow_burn_opens_a_ticket_not_a_page() -> None:
    # 7.5% errors for three days: burn 1.5 over every span, above the ticket's 1, far below the page's 6.
    got = figs(slo_figures(slo(), hour(79), hourly_history([75.0] * 80))[0])
    assert got[("slo_burn_rate", "3d")] == pytest.approx(1.5)
    assert got[("slo_burn_alert", "ticket")] == 1 and got[("slo_burn_alert", "page")] == 0


def test_error_budget_remaining_counts_only_the_period() -> None:
    s = slo(objective=0.99, period="28d")  # budget 1%
    days = [dt.date(2026, 10, 1) + dt.timedelta(days=i) for i in range(35)]
    history = {}
    for i, d in enumerate(days):
        events, bad = 1000.0 + 10 * i, float(i % 5)
        history[daily_window(d).start] = (events, events - bad)
    w = daily_window(days[-1])
    got = figs(slo_figures(s, w, history)[0])
    inside = [(1000.0 + 10 * i, float(i % 5)) for i in range(7, 35)]  # the last 28 days
    events, bad = sum(e for e, _ in inside), sum(b for _, b in inside)
    assert got[("slo_error_budget_remaining", "")] == pytest.approx(1 - bad / (0.01 * events))
    # Overspent: negative.
    history[w.start] = (1000.0, 500.0)
    got = figs(slo_figures(s, w, history)[0])
    assert got[("slo_error_budget_remaining", "")] < 0


def test_too_few_events_never_fire_and_say_why() -> None:
    recs, notes, _ = slo_figures(slo(min_events=100), hour(79), hourly_history([25.0] * 80, events=50.0))
    got = figs(recs)
    assert got[("slo_burn_rate", "1h")] == pytest.approx(10.0)  # 50% errors
    assert got[("slo_burn_alert", "page")] == 0 and got[("slo_burn_alert", "ticket")] == 1  # 6h holds 300 events
    assert any("not judged: 50 events in 1h, fewer than min_events 100" in n for n in notes), notes


def test_missing_windows_are_named() -> None:
    history = {k: v for k, v in hourly_history([10.0] * 80).items() if k != hour(77).start}
    notes = slo_figures(slo(), hour(79), history)[1]
    assert "slo avail: burn over 3d from 71 of 72 hourly windows stored" in " ".join(notes)


def test_analyzer_counts_in_the_warehouse_and_reads_earlier_windows_from_the_store(tmp_path: Path) -> None:
    day = dt.date(2026, 11, 10)
    rows = []
    statuses = ["ok"] * 90 + ["rate_limit_exceeded"] * 6 + ["timeout"] * 4
    for i, st in enumerate(statuses):
        rows.append(
            {
                "timestamp": pd.Timestamp(day) + pd.Timedelta(minutes=10 * i),
                "model": "gpt-4o" if i % 2 else "gpt-4o-mini",
                "endpoint": "chat" if i % 3 else "search",
                "status": st,
                "latency_seconds": None if i == 5 else 0.1 * (i % 40),
            }
        )
    rows.append(
        {
            "timestamp": pd.Timestamp(day) + pd.Timedelta(days=1),
            "model": "gpt-4o",
            "endpoint": "chat",
            "status": "timeout",
            "latency_seconds": 9.0,
        }
    )  # the next window: left out
    frame = pd.DataFrame(rows)
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    con.register("f", frame)
    con.execute("CREATE TABLE interactions AS SELECT * FROM f")
    con.close()
    cfg = parse_config(
        {
            "warehouse": {"url": f"duckdb:///{tmp_path / 'wh.duckdb'}"},
            "store": {"url": f"duckdb:///{tmp_path / 'store.duckdb'}"},
            "slos": [
                {"name": "avail", "objective": 0.9, "sli": {"type": "availability"}, "min_events": 0},
                {"name": "lat", "objective": 0.9, "sli": {"type": "latency", "threshold_seconds": 2.0},
                 "model": "gpt-4o", "endpoint": "chat", "min_events": 0},
            ],
        }
    )  # fmt: skip
    store = Store(cfg)
    store.ensure()
    # Two earlier daily windows already stored: 100 events with 5 bad, and 200 with 40 bad.
    for back, (e, g) in ((2, (100.0, 95.0)), (1, (200.0, 160.0))):
        w = daily_window(day - dt.timedelta(days=back))
        store.replace_window(
            w, [MetricRecord.of("slo_events", e, slo="avail"), MetricRecord.of("slo_good_events", g, slo="avail")], "t"
        )
    window = daily_window(day)
    result = analyze_slo(open_window(cfg, window, store))
    got = {(r.metric, r.labels): r.value for r in result.records}
    day_rows = frame[frame["timestamp"] < pd.Timestamp(day) + pd.Timedelta(days=1)]
    assert got[("slo_events", (("slo", "avail"),))] == len(day_rows) == 100
    assert got[("slo_good_events", (("slo", "avail"),))] == (day_rows["status"] == "ok").sum() == 90
    scoped = day_rows[(day_rows["model"] == "gpt-4o") & (day_rows["endpoint"] == "chat")]
    scoped = scoped[scoped["latency_seconds"].notna()]
    assert got[("slo_events", (("slo", "lat"),))] == len(scoped)
    assert got[("slo_good_events", (("slo", "lat"),))] == (scoped["latency_seconds"] <= 2.0).sum()
    # 1d: 10 bad of 100 -> burn (0.1 / 0.1) = 1; 3d: (10 + 5 + 40) / 400 / 0.1 = 1.375.
    assert got[("slo_burn_rate", (("slo", "avail"), ("span", "1d")))] == pytest.approx(1.0)
    assert got[("slo_burn_rate", (("slo", "avail"), ("span", "3d")))] == pytest.approx(55 / 400 / 0.1)
    assert got[("slo_error_budget_remaining", (("slo", "avail"),))] == pytest.approx(1 - 55 / (0.1 * 400))
    assert got[("slo_burn_alert", (("slo", "avail"), ("tier", "ticket")))] == 0  # 1d at exactly 1: not above


@pytest.mark.parametrize(
    ("slos", "message"),
    [
        ([{"name": "a", "objective": 1.0, "sli": {"type": "availability"}}], "slos.0.objective"),
        ([{"name": "a", "objective": 0.99, "sli": {"type": "latency"}}], "threshold_seconds"),
        ([{"name": "a", "objective": 0.99, "sli": {"type": "uptime"}}], "slos.0.sli"),
        ([{"name": "a", "objective": 0.99, "period": "1h", "sli": {"type": "availability"}}], "period '1h'"),
        ([{"name": "a", "objective": 0.99, "target": 0.9, "sli": {"type": "availability"}}], "target"),
        ([{"name": "a", "objective": 0.9, "sli": {"type": "availability"}}] * 2, "a appears twice"),
        ([{"name": "a b", "objective": 0.9, "sli": {"type": "availability"}}], "slo name 'a b'"),
    ],
)
def test_config_errors_name_the_key(slos: list, message: str) -> None:
    with pytest.raises(ConfigError, match="slos") as err:
        parse_config({"warehouse": {"url": "duckdb:///x.duckdb"}, "slos": slos}, source="cfg.yaml")
    assert message in str(err.value)


def test_slo_rules_command_prints_the_rules_and_the_shipped_file_is_current(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["slo", "rules", "--config", str(REPO / "configs" / "monitoring.yaml")])
    assert res.exit_code == 0, res.output
    assert res.stdout == render_rules(load_config(REPO / "configs" / "monitoring.yaml"))
    assert res.stdout == RULES_FILE.read_text(), "regenerate: aimon slo rules > deployments/prometheus/rules/slo.yml"
    doc = yaml.safe_load(res.stdout)
    alerts = [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
    assert {(a["labels"]["tier"], a["labels"]["severity"]) for a in alerts} == {
        ("page", "critical"),
        ("ticket", "warning"),
    }
    bad = CliRunner().invoke(app, ["slo", "rules", "--config", str(tmp_path / "missing.yaml")])
    assert bad.exit_code == 2


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (Debian package prometheus; `make services` installs it)")
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_checks_the_shipped_rules(tmp_path: Path) -> None:
    res = _promtool("check", "rules", str(RULES_FILE), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_a_fast_burn_pages_and_a_slow_burn_only_tickets(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "warehouse": {"url": "duckdb:///x.duckdb"},
            "slos": [
                {"name": "fast", "objective": 0.95, "sli": {"type": "availability"}},
                {"name": "slow", "objective": 0.95, "sli": {"type": "availability"}},
                {"name": "quiet", "objective": 0.95, "sli": {"type": "availability"}},
            ],
        },
        source="test.yaml",
    )
    (tmp_path / "slo.yml").write_text(render_rules(cfg))
    alerts = {
        (r["labels"]["slo"], r["labels"]["tier"]): r
        for g in yaml.safe_load((tmp_path / "slo.yml").read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    }

    def series(name: str, good: str) -> list[dict[str, str]]:
        labels = f'job="aimon", slo="{name}", granularity="hourly", instance=""'
        return [
            {"series": f"slo_events{{{labels}}}", "values": "1000x100"},
            {"series": f"slo_good_events{{{labels}}}", "values": good},
        ]

    # Samples every 5 minutes for 8 h 20 min: "fast" fails 80% of requests throughout (burn 16),
    # "slow" 10% (burn 2), "quiet" 1% (burn 0.2).
    def expected(name: str, tier: str) -> dict:
        rule = alerts[(name, tier)]
        ann = {k: v.replace("{{ $labels.granularity }}", "hourly") for k, v in rule["annotations"].items()}
        return {"exp_labels": {**rule["labels"], "granularity": "hourly"}, "exp_annotations": ann}

    test = {
        "rule_files": ["slo.yml"],
        "evaluation_interval": "5m",
        "tests": [
            {
                "interval": "5m",
                "input_series": series("fast", "200x100") + series("slow", "900x100") + series("quiet", "990x100"),
                "alert_rule_test": [
                    {
                        "eval_time": "7h",
                        "alertname": "AimonSLOBurnRate",
                        "exp_alerts": [
                            expected("fast", "page"),
                            expected("fast", "ticket"),
                            expected("slow", "ticket"),
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "slo.test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    res = _promtool("test", "rules", "slo.test.yml", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
