"""The Prometheus side against the real servers (Debian's prometheus-pushgateway,
prometheus, promtool, prometheus-alertmanager) on loopback and free ports."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from aimon.catalogue import METRICS
from aimon.cli import app
from aimon.config.sources import PushgatewayConfig
from aimon.demo import generate_day
from aimon.errors import PushError
from aimon.flows.monitor import monitor_window
from aimon.records import ALL, MetricRecord
from aimon.store.metrics import Store
from aimon.store.openmetrics import series_line, write_openmetrics
from aimon.tasks.prometheus import push_records, pushable
from aimon.windows import daily_window, last_complete_window
from tests import promstack
from tests.conftest import DAY, PRICING, make_config, write_duckdb
from tests.promstack import Server, free_port, need, query, query_range, wait_for
from tests.test_deployments import dashboard_exprs, promql_names, rules

DEPLOY = promstack.DEPLOY
# slo.yml is `aimon slo rules` output: tests/test_slo.py checks and unit-tests it with promtool.
PROM_RULES = sorted(p for p in (DEPLOY / "prometheus" / "rules").glob("*.yml") if p.name != "slo.yml")
PROM_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
# Labels Prometheus or the Pushgateway add to a pushed series.
ADDED = {"__name__", "job", "granularity", "instance"}


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture
def prometheus(tmp_path: Path, pushgateway: Server) -> Iterator[Server]:
    config = promstack.prometheus_config(tmp_path, pushgateway=pushgateway)
    server = promstack.start_prometheus(tmp_path, config, tmp_path / "prom-data")
    try:
        yield server
    finally:
        server.stop()


def live_frame(day: dt.date, rows: int = 600) -> pd.DataFrame:
    t = generate_day(day, rows, np.random.default_rng(11), day_offset=1)
    df = t.drop_columns(["embedding"]).to_pandas()
    for c in ("input_tokens", "output_tokens", "cached_input_tokens"):
        df[c] = df[c].astype("Int64")
    return df


def write_config(tmp_path: Path, url: str, **extra: Any) -> str:
    data = {"warehouse": {"url": url, "interactions_table": "interactions"}, "pricing": PRICING, **extra}
    path = tmp_path / "monitoring.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def key(metric: str, labels: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return metric, tuple(sorted(labels.items()))


def stored(url: str, window: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    figs = Store(make_config(url)).figures(granularity=window.granularity, start_from=window.start, before=window.end)
    return {key(f.metric, f.labels): f.value for f in figs}


def prom_series(prom: Server, granularity: str, at: float | None = None) -> dict[Any, float]:
    """Every aimon series Prometheus holds for a granularity, keyed like the store."""
    params = {} if at is None else {"time": at}
    out = {}
    for r in query(prom, f'{{job="aimon", granularity="{granularity}", __name__!~"push_.*|ALERTS.*|.*:.*"}}', **params):
        labels = {k: v for k, v in r["metric"].items() if k not in ADDED}
        out[key(r["metric"]["__name__"], labels)] = float(r["value"][1])
    return out


def aimon_lines(gateway: Server) -> list[str]:
    """The gateway's exposition of aimon's groups (not its own Go runtime metrics)."""
    return [line for line in gateway.get("/metrics").splitlines() if 'job="aimon"' in line]


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# -- pushing ------------------------------------------------------------------------


def test_unbounded_or_invalid_labels_are_never_pushed() -> None:
    recs = [
        MetricRecord.of("llm_requests", 3, model="gpt-4o", endpoint="chat"),
        MetricRecord.of("llm_requests", 1, model="gpt-4o", user_id="u1"),
        MetricRecord.of("llm_requests", 1, model="gpt-4o", job="other"),
        MetricRecord.of("bad-name", 1),
        MetricRecord.of("llm_cost_usd", 2.5, **{"model": "gpt-4o", "bad label": "x"}),
    ]
    ok, problems = pushable(recs)
    assert ok == recs[:1]
    assert len(problems) == 4
    assert any("'user_id' is unbounded" in p for p in problems)
    assert any("'job' is reserved" in p for p in problems)
    assert any("'bad-name' is not a valid Prometheus metric name" in p for p in problems)


def test_pushgateway_config_errors_name_the_key() -> None:
    from aimon.config import parse_config
    from aimon.errors import ConfigError

    base = {"warehouse": {"url": "duckdb:///x.duckdb"}}
    with pytest.raises(ConfigError, match=r"'pushgateway.url' in <t>: 'localhost:9091' is not an http\(s\) URL"):
        parse_config({**base, "pushgateway": {"url": "localhost:9091"}}, source="<t>")
    with pytest.raises(ConfigError, match=r"unknown key 'pushgateway.retries'"):
        parse_config({**base, "pushgateway": {"retries": 3}}, source="<t>")
    with pytest.raises(ConfigError, match=r"'pushgateway.job'"):
        parse_config({**base, "pushgateway": {"job": "a/b"}}, source="<t>")


def test_push_to_a_closed_port_retries_then_fails_naming_the_gateway() -> None:
    port = free_port()  # nothing listens there
    pg = PushgatewayConfig(url=f"http://127.0.0.1:{port}", attempts=3, backoff_seconds=0.01, timeout_seconds=2)
    with pytest.raises(
        PushError, match=rf"could not reach the Pushgateway at http://127.0.0.1:{port} after 3 attempts"
    ):
        push_records(pg, "daily", [MetricRecord.of("llm_requests", 1.0)])


def test_config_check_probes_the_gateway(tmp_path: Path, duck_url: str, pushgateway: Server) -> None:
    runner = CliRunner()
    ok = runner.invoke(
        app, ["config", "check", "--config", write_config(tmp_path, duck_url, pushgateway={"url": pushgateway.url})]
    )
    assert ok.exit_code == 0, ok.output
    assert f"pushgateway {pushgateway.url}: ready" in ok.output
    port = free_port()
    down = runner.invoke(
        app,
        [
            "config",
            "check",
            "--config",
            write_config(tmp_path, duck_url, pushgateway={"url": f"http://127.0.0.1:{port}"}),
        ],
    )
    assert down.exit_code == 1
    assert f"pushgateway http://127.0.0.1:{port}: " in down.output and "remove pushgateway.url" in down.output


def test_gateway_rejection_is_not_retried(pushgateway: Server) -> None:
    # Another job already pushed llm_requests as a counter: the same name as a gauge is
    # inconsistent, and the gateway answers 400, which no retry will fix.
    import urllib.request

    req = urllib.request.Request(
        f"{pushgateway.url}/metrics/job/other", data=b"# TYPE llm_requests counter\nllm_requests 1\n", method="PUT"
    )
    urllib.request.urlopen(req, timeout=10).close()
    pg = PushgatewayConfig(url=pushgateway.url, attempts=3, backoff_seconds=5)
    with pytest.raises(PushError, match="rejected the push of job=aimon granularity=daily: HTTP 400"):
        push_records(pg, "daily", [MetricRecord.of("llm_requests", 1.0, model="m", endpoint="e")])


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_live_run_pushes_prometheus_serves_the_stored_values_and_a_vanished_series_goes(
    tmp_path: Path, pushgateway: Server, prometheus: Server
) -> None:
    window = last_complete_window("daily")
    df = live_frame(window.start.date())
    url = write_duckdb(tmp_path / "wh.duckdb", pd.concat([df, live_frame(DAY)], ignore_index=True))
    cfg = write_config(tmp_path, url, pushgateway={"url": pushgateway.url, "job": "aimon"})

    summary = monitor_window(granularity="daily", config_path=cfg)
    assert summary.status == "success", (summary.outcomes, summary.notes)
    assert summary.live
    assert any(n.startswith("pushed ") for n in summary.notes), summary.notes
    # Every name the run emits is in the catalogue (rules and dashboard rely on it).
    assert {r.metric for r in summary.records} <= set(METRICS), "add these names to aimon/catalogue.py: " + ", ".join(
        sorted({r.metric for r in summary.records} - set(METRICS))
    )

    want = stored(url, window)
    assert len(want) > 50
    got = wait_for(lambda: (s := prom_series(prometheus, "daily")) and len(s) >= len(want) and s, "the first scrape")
    assert set(got) == set(want)
    diff = {k: (got[k], want[k]) for k in want if not same(got[k], want[k])}
    assert not diff
    # The gateway records the push per group.
    push_time = query(prometheus, 'push_time_seconds{job="aimon", granularity="daily"}')
    assert len(push_time) == 1 and float(push_time[0]["value"][1]) > 0

    # The deployed alert rules evaluate the pushed figures: p95 above 5s fires for
    # exactly the model x endpoint series the metrics table has above 5s.
    slow = {
        (dict(k[1])["model"], dict(k[1])["endpoint"])
        for k, v in want.items()
        if k[0] == "llm_latency_seconds"
        and dict(k[1])["quantile"] == "0.95"
        and ALL not in dict(k[1]).values()
        and v > 5
    }
    assert slow, "the test data should hold a slow endpoint"
    firing = wait_for(
        lambda: (
            {
                (a["metric"]["model"], a["metric"]["endpoint"])
                for a in query(prometheus, 'ALERTS{alertname="AimonLatencyP95High", alertstate="firing"}')
            }
            == slow
        ),
        "AimonLatencyP95High to fire",
    )
    assert firing

    # Every dashboard query parses in the real Prometheus, and the ones on names this
    # run emitted return data.
    emitted = {k[0] for k in want} | {"push_time_seconds", "up", "ALERTS"}
    emitted |= {r["record"] for r in rules() if "record" in r and promql_names(r["expr"]) <= emitted}
    for expr in dashboard_exprs():
        if expr.startswith("label_values("):
            continue
        q = expr.replace("$granularity", "daily").replace("$model", ".*").replace("$lookback", "1d")
        query(prometheus, q)  # a bad query is an HTTP 400 here
        if promql_names(expr) <= emitted:
            # Recording rules may need another evaluation after the scrape.
            wait_for(lambda q=q: query(prometheus, q), f"data for dashboard query {q}", timeout=20)

    # A historical window is stored but never pushed: the gateway serves exactly what
    # it served before (push_time_seconds included).
    before = aimon_lines(pushgateway)
    old = monitor_window(granularity="daily", window_start=DAY.isoformat(), config_path=cfg)
    assert old.status == "success" and not old.live
    assert any("historical window" in n for n in old.notes)
    assert stored(url, daily_window(DAY))
    assert aimon_lines(pushgateway) == before

    gone = 'llm_requests{job="aimon", granularity="daily", model="gpt-4o-mini"}'
    assert query(prometheus, gone), "gpt-4o-mini is there before"

    # The live window again, without gpt-4o-mini: replace semantics drop its series.
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM interactions WHERE model = 'gpt-4o-mini'"))
    engine.dispose()
    again = monitor_window(granularity="daily", config_path=cfg)
    assert again.status == "success"
    assert 'model="gpt-4o-mini"' not in pushgateway.get("/metrics")
    wait_for(lambda: not query(prometheus, gone), "the vanished series to go stale in Prometheus")
    want = stored(url, window)
    got = wait_for(
        lambda: (s := prom_series(prometheus, "daily")) and set(s) == set(want) and s, "the second push's series"
    )
    assert all(same(got[k], want[k]) for k in want)
    assert not any(dict(k[1]).get("model") == "gpt-4o-mini" for k in got)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_gateway_down_run_degraded_exit_1_nothing_lost_next_run_pushes(tmp_path: Path) -> None:
    window = last_complete_window("daily")
    url = write_duckdb(tmp_path / "wh.duckdb", live_frame(window.start.date()))
    port = free_port()
    cfg = write_config(
        tmp_path,
        url,
        pushgateway={"url": f"http://127.0.0.1:{port}", "attempts": 2, "backoff_seconds": 0.05, "timeout_seconds": 2},
    )
    runner = CliRunner()
    first = runner.invoke(app, ["run", "--config", cfg])
    assert first.exit_code == 1, first.output
    assert "degraded" in first.output and "push failed" in first.output
    assert f"127.0.0.1:{port}" in first.output

    figs = stored(url, window)
    accepted = figs[key("monitoring_rows", {"status": "accepted"})]
    assert figs[key("llm_requests", {"model": ALL, "endpoint": ALL})] == accepted > 500
    assert key("llm_cost_usd", {"model": ALL, "endpoint": ALL}) in figs
    assert figs[key("monitoring_run_success", {})] == 0
    assert key("monitoring_last_success_timestamp_seconds", {}) not in figs
    run = Store(make_config(url)).runs_for(window)[-1]
    assert run["status"] == "degraded" and "pushgateway" in run["error"] and str(port) in run["error"]

    # The gateway comes back on the same port: the next run pushes the current state.
    gateway = promstack._start(
        "pushgateway",
        [need("prometheus-pushgateway"), f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],
        port,
        tmp_path / "pushgateway.log",
    )
    try:
        second = runner.invoke(app, ["run", "--config", cfg])
        assert second.exit_code == 0, second.output
        text = gateway.get("/metrics")
        n = figs[key("llm_requests", {"model": ALL, "endpoint": ALL})]
        assert (
            f'llm_requests{{endpoint="__all__",granularity="daily",instance="",job="aimon",model="__all__"}} {n:g}'
            in text
        )
        assert 'monitoring_run_success{granularity="daily",instance="",job="aimon"} 1' in text

        # A live run that fails replaces only the run-meta figures on the gateway: the
        # failure shows at once (AimonRunFailed), the last good figures stay.
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE interactions RENAME TO interactions_moved"))
        engine.dispose()
        third = runner.invoke(app, ["run", "--config", cfg])
        assert third.exit_code == 2 and "interactions" in third.output  # a contract error
        text = gateway.get("/metrics")
        assert 'monitoring_run_success{granularity="daily",instance="",job="aimon"} 0' in text
        assert (
            f'llm_requests{{endpoint="__all__",granularity="daily",instance="",job="aimon",model="__all__"}} {n:g}'
            in text
        )
        assert "monitoring_last_success_timestamp_seconds{" in text
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE interactions_moved RENAME TO interactions"))
        engine.dispose()
    finally:
        gateway.stop()
    statuses = [r["status"] for r in Store(make_config(url)).runs_for(window)]
    assert statuses == ["degraded", "success", "failed"]
    after = stored(url, window)
    assert after[key("monitoring_run_success", {})] == 0  # the failed run's
    # The degraded run had lost nothing: the same figures as the successful rerun.
    meta = {"monitoring_run_success", "monitoring_run_duration_seconds", "monitoring_last_success_timestamp_seconds"}
    assert {k: v for k, v in figs.items() if k[0] not in meta} == {k: v for k, v in after.items() if k[0] not in meta}


@pytest.mark.usefixtures("prefect_harness")
def test_a_degraded_live_run_keeps_the_last_success_time_on_the_gateway(tmp_path: Path, pushgateway: Server) -> None:
    from aimon.flows.monitor import monitor_flow
    from aimon.tasks.registry import ANALYZERS

    window = last_complete_window("daily")
    url = write_duckdb(tmp_path / "wh.duckdb", live_frame(window.start.date()))
    cfg = write_config(tmp_path, url, pushgateway={"url": pushgateway.url})
    assert monitor_window(config_path=cfg).status == "success"
    success_at = stored(url, window)[key("monitoring_last_success_timestamp_seconds", {})]

    def broken(ctx: Any) -> Any:
        raise RuntimeError("analyzer exploded")

    degraded = monitor_flow({**ANALYZERS, "broken": broken})(config_path=cfg)
    assert degraded.status == "degraded"
    assert key("monitoring_last_success_timestamp_seconds", {}) not in stored(url, window)
    lines = aimon_lines(pushgateway)
    assert 'monitoring_run_success{granularity="daily",instance="",job="aimon"} 0' in lines
    last = [ln for ln in lines if ln.startswith("monitoring_last_success_timestamp_seconds{")]
    # The first run's success time, carried forward (from the runs table's finished_at).
    assert len(last) == 1 and abs(float(last[0].split()[-1]) - success_at) < 5


# -- history: OpenMetrics export, promtool blocks, query_range -----------------------


def test_openmetrics_lines_escape_and_stamp_the_window_end(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    store = Store(make_config(url))
    store.ensure()
    w1, w2 = daily_window(DAY - dt.timedelta(days=1)), daily_window(DAY)
    store.replace_window(w1, [MetricRecord.of("llm_cost_usd", 1.5, model='we"ird\\m\nx', endpoint="chat")], "r1")
    store.replace_window(
        w2,
        [
            MetricRecord.of("llm_cost_usd", 2.25, model='we"ird\\m\nx', endpoint="chat"),
            MetricRecord.of("data_drift_p_value", float("nan"), feature="f", method="ks"),
            MetricRecord.of("llm_requests", 7, model="a", user_id="u1"),  # never exported
        ],
        "r2",
    )
    out = io.StringIO()
    stats = write_openmetrics(store, out, start=w1.start, end=w2.end, job="aimon")
    text = out.getvalue()
    end1 = int(w1.end.replace(tzinfo=dt.UTC).timestamp())
    weird = 'job="aimon",granularity="daily",endpoint="chat",model="we\\"ird\\\\m\\nx"'
    assert text.splitlines() == [
        "# HELP data_drift_p_value " + METRICS["data_drift_p_value"],
        "# TYPE data_drift_p_value gauge",
        f'data_drift_p_value{{job="aimon",granularity="daily",feature="f",method="ks"}} NaN {end1 + 86400}',
        "# HELP llm_cost_usd " + METRICS["llm_cost_usd"],
        "# TYPE llm_cost_usd gauge",
        f"llm_cost_usd{{{weird}}} 1.5 {end1}",
        f"llm_cost_usd{{{weird}}} 2.25 {end1 + 86400}",
        "# EOF",
    ]
    assert (stats.samples, stats.series, stats.metrics) == (3, 2, 2)
    assert list(stats.skipped.values()) == [1]
    assert series_line("x", {}, float("inf"), w1.end).startswith("x{} +Inf ")


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_exported_history_becomes_blocks_that_prometheus_reads_back(tmp_path: Path, duck_url: str) -> None:
    days = [DAY - dt.timedelta(days=2), DAY - dt.timedelta(days=1), DAY]
    cfg = write_config(tmp_path, duck_url)
    for day in days:
        assert monitor_window(granularity="daily", window_start=day.isoformat(), config_path=cfg).status == "success"

    out = tmp_path / "history.om"
    result = CliRunner().invoke(
        app, ["export", "openmetrics", "--config", cfg, "--start", str(days[0]), "--end", str(days[-1]), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "windows" in result.output and out.read_text().endswith("# EOF\n")

    data = tmp_path / "tsdb"
    subprocess.run(
        [need("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(out), str(data)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    config = promstack.prometheus_config(tmp_path)
    prom = promstack.start_prometheus(tmp_path, config, data)
    try:
        ends = [daily_window(d).end.replace(tzinfo=dt.UTC).timestamp() for d in days]
        everything = 'llm_requests{job="aimon", granularity="daily", model="__all__", endpoint="__all__"}'
        series = query_range(prom, everything, ends[0] - 3600, ends[-1] + 3600, "1h")
        assert len(series) == 1
        points = [(float(t), float(v)) for t, v in series[0]["values"]]
        want = [
            (e, stored(duck_url, daily_window(d))[key("llm_requests", {"model": ALL, "endpoint": ALL})])
            for d, e in zip(days, ends, strict=True)
        ]
        # One sample per window at its end; the 5-minute lookback shows it at that step only.
        assert points == want
        # Every figure of every window, at its window's end.
        for d, e in zip(days, ends, strict=True):
            expect = stored(duck_url, daily_window(d))
            got = prom_series(prom, "daily", at=e)
            assert set(got) == set(expect), d
            assert all(same(got[k], expect[k]) for k in expect), d
    finally:
        prom.stop()


def test_samples_newer_than_three_hours_are_flagged() -> None:
    from aimon.store.openmetrics import ExportStats, too_recent

    now = dt.datetime(2026, 11, 29, 12, 0)
    assert not too_recent(ExportStats(last=now - dt.timedelta(hours=3, minutes=1)), now)
    assert too_recent(ExportStats(last=now - dt.timedelta(hours=2, minutes=59)), now)
    assert not too_recent(ExportStats(), now)


def test_export_with_nothing_stored_fails_and_writes_no_file(tmp_path: Path, duck_url: str) -> None:
    out = tmp_path / "none.om"
    cfg = write_config(tmp_path, duck_url)
    result = CliRunner().invoke(
        app, ["export", "openmetrics", "--config", cfg, "--start", "2020-01-01", "--end", "2020-01-02", "-o", str(out)]
    )
    assert result.exit_code == 1
    assert "no figures stored" in result.output and "aimon backfill" in result.output
    assert not out.exists() and not (tmp_path / "none.om.part").exists()
    bad = CliRunner().invoke(
        app, ["export", "openmetrics", "--config", cfg, "--start", "2020-02-01", "--end", "2020-01-01"]
    )
    assert bad.exit_code == 2


# -- rules, alertmanager, dashboard ---------------------------------------------------


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    promtool = need("promtool")
    check = subprocess.run([promtool, "check", "rules", *map(str, PROM_RULES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run([promtool, "test", "rules", *map(str, PROM_TESTS)], capture_output=True, text=True)
    assert test.returncode == 0, test.stdout + test.stderr
    cfg = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(DEPLOY / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        cwd=DEPLOY / "prometheus",
    )
    assert cfg.returncode == 0, cfg.stdout + cfg.stderr


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    alerts = {
        r["alert"]
        for f in PROM_RULES
        for g in yaml.safe_load(f.read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    assert len(alerts) >= 12
    fired, quiet = set(), set()
    for f in PROM_TESTS:
        for t in yaml.safe_load(f.read_text())["tests"]:
            for a in t.get("alert_rule_test", []):
                (fired if a.get("exp_alerts") else quiet).add(a["alertname"])
    assert alerts - fired == set(), "alerts without a promtool test that makes them fire"
    assert alerts - quiet == set(), "alerts without a promtool test where they stay quiet"


def test_alertmanager_config_passes_amtool() -> None:
    amtool = need("amtool")
    res = subprocess.run(
        [amtool, "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml")], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr
    cfg = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    routes = {m for r in cfg["route"]["routes"] for m in r["matchers"]}
    assert routes == {'severity="critical"', 'severity="warning"'}
    severities = {
        r["labels"]["severity"]
        for f in PROM_RULES
        for g in yaml.safe_load(f.read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    assert severities == {"critical", "warning"}


# -- the whole alert path: Pushgateway -> Prometheus rules -> Alertmanager -> Slack, email


class _SlackHook:
    """A local stand-in for a Slack incoming webhook: records the JSON bodies."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.bodies: list[dict[str, Any]] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/XXXX"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.mark.slow
def test_alerts_route_by_severity_to_slack_and_email(tmp_path: Path, pushgateway: Server) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    mails: list[Any] = []

    class Collect(Message):
        def handle_message(self, message: Any) -> None:
            mails.append(message)

    smtp_port = free_port()
    smtp = Controller(Collect(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    hook = _SlackHook()
    servers: list[Server] = []
    try:
        # deployments/alertmanager/alertmanager.yml, pointed at the loopback stand-ins,
        # without TLS and auth (the local SMTP server has neither), and short waits.
        am_cfg = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
        (tmp_path / "slack_webhook_url").write_text(hook.url)
        glob = am_cfg["global"]
        glob["slack_api_url_file"] = str(tmp_path / "slack_webhook_url")
        glob["smtp_smarthost"] = f"127.0.0.1:{smtp_port}"
        glob["smtp_require_tls"] = False
        del glob["smtp_auth_username"], glob["smtp_auth_password_file"]
        am_cfg["route"].update(group_wait="1s", group_interval="1s")
        am_path = tmp_path / "alertmanager.yml"
        am_path.write_text(yaml.safe_dump(am_cfg))
        am = promstack.start_alertmanager(tmp_path, am_path)
        servers.append(am)
        config = promstack.prometheus_config(tmp_path, pushgateway=pushgateway, alertmanager=am)
        servers.append(promstack.start_prometheus(tmp_path, config, tmp_path / "prom-data"))

        pg = PushgatewayConfig(url=pushgateway.url)
        push_records(
            pg,
            "daily",
            [
                MetricRecord.of("llm_error_rate", 0.2, model="gpt-4o", endpoint="chat"),  # critical
                MetricRecord.of("llm_requests", 500, model="gpt-4o", endpoint="chat"),
                MetricRecord.of("data_drift_detected", 1, feature="language"),  # warning
                MetricRecord.of("data_drift_detected", 0, feature="country"),
            ],
        )
        wait_for(lambda: len(hook.bodies) >= 2 and mails, "Slack messages and an email", timeout=60)
        texts = [json.dumps(b) for b in hook.bodies]
        assert any("AimonErrorRateHigh" in t and "20% of gpt-4o requests on chat failed" in t for t in texts)
        assert any("AimonDataDrift" in t and "feature language drifted" in t for t in texts)
        assert not any("country" in t for t in texts)
        assert all(b["channel"] == "#ml-alerts" for b in hook.bodies)
        # Only the critical alert is mailed.
        assert len(mails) == 1
        assert "AimonErrorRateHigh" in mails[0]["Subject"] and mails[0]["To"] == "ml-oncall@example.com"
        body = mails[0].get_payload(decode=True) or b"".join(
            p.get_payload(decode=True) or b"" for p in mails[0].walk() if not p.is_multipart()
        )
        assert b"gpt-4o" in body
    finally:
        for s in reversed(servers):
            s.stop()
        hook.close()
        smtp.stop()
