"""The Python API (aimon.open, aimon/api/) on a store filled by monitor_window over four
demo days: its frames hold what the store's own classes read, its filters and time
arguments mean what the docs say, its A/B and drift answers agree with the stored
figures, its errors name what is unknown, and `import aimon` stays light."""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

import aimon
from aimon.api import Monitor
from aimon.config import Config, load_config
from aimon.demo import seed_duckdb
from aimon.errors import NotFound, StoreError
from aimon.flows.monitor import monitor_window
from aimon.records import MetricRecord
from aimon.store.alerts import AlertStore
from aimon.store.metrics import Store
from aimon.tasks.abtest.results import STATUS_CODES
from aimon.windows import daily_window

REPO = Path(__file__).resolve().parent.parent
END = dt.date(2026, 11, 20)  # the demo's last day: drift (language), latency and cost incidents
DAYS = 4  # END-2 is the error-burst day; END-3 has no reference yet, so no drift
BURST = END - dt.timedelta(days=2)


def write_config(tmp: Path, store: str | None = None) -> str:
    data = yaml.safe_load((REPO / "configs" / "monitoring.yaml").read_text())
    data["warehouse"]["url"] = f"duckdb:///{tmp / 'wh.duckdb'}"
    if store:
        data["store"]["url"] = store
    path = tmp / "monitoring.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> tuple[str, Config]:
    tmp = tmp_path_factory.mktemp("api")
    seed_duckdb(tmp / "wh.duckdb", days=DAYS, rows_per_day=3000, seed=7, end=END)
    path = write_config(tmp)
    for offset in range(DAYS - 1, -1, -1):
        day = END - dt.timedelta(days=offset)
        summary = monitor_window(granularity="daily", window_start=day.isoformat(), config_path=path)
        assert summary.status == "success", summary
    return path, load_config(path)


@pytest.fixture(scope="module")
def m(filled: tuple[str, Config]) -> Monitor:
    return aimon.open(filled[0])


def test_import_aimon_is_light_and_open_is_lazy() -> None:
    code = textwrap.dedent(
        """
        import sys
        import aimon
        heavy = [m for m in ("pandas", "sqlalchemy", "prefect", "aimon.api") if m in sys.modules]
        print(heavy)
        print(callable(aimon.open), "aimon.api" in sys.modules, "prefect" in sys.modules)
        try:
            aimon.nothing_here
        except AttributeError as err:
            print(err)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.splitlines() == ["[]", "True True False", "module 'aimon' has no attribute 'nothing_here'"]


@pytest.mark.slow
def test_figures_are_the_stores_figures_as_a_tidy_frame(m: Monitor, filled: tuple[str, Config]) -> None:
    stored = Store(filled[1]).figures(metric="llm_requests")
    df = m.figures("llm_requests")
    assert list(df.columns) == [
        "window_start",
        "window_end",
        "granularity",
        "metric",
        "endpoint",
        "model",
        "value",
        "run_id",
    ]
    assert {str(df[c].dtype) for c in ("window_start", "window_end")} == {"datetime64[ns, UTC]"}
    got = {
        (r.window_start.to_pydatetime().replace(tzinfo=None), r.endpoint, r.model, r.value, r.run_id)
        for r in df.itertuples()
    }
    want = {(f.window_start, f.labels["endpoint"], f.labels["model"], f.value, f.run_id) for f in stored}
    assert got == want and len(df) == len(stored) > 0
    assert df["window_start"].dt.date.nunique() == DAYS

    # Labels filter by equality; numbers are compared as the stored label text.
    gpt = m.figures("llm_latency_seconds", model="gpt-4o", endpoint="chat", quantile=0.95)
    assert len(gpt) == DAYS and set(gpt["quantile"]) == {"0.95"} and set(gpt["model"]) == {"gpt-4o"}
    one = Store(filled[1]).figures(
        metric="llm_latency_seconds",
        labels={"model": "gpt-4o", "endpoint": "chat", "quantile": "0.95"},
    )
    assert gpt["value"].tolist() == [f.value for f in one]

    # A label called like a column (A/B figures have a `metric` label) goes in labels=.
    ab = m.figures("ab_lift", labels={"metric": "latency"}, variant="treatment")
    assert len(ab) == DAYS and set(ab["metric_label"]) == {"latency"} and set(ab["metric"]) == {"ab_lift"}

    # Several metrics: the union of their label columns; several windows.
    both = m.figures(["llm_requests", "llm_error_rate"], start=END, end=END + dt.timedelta(days=1))
    last = df[df["window_start"].dt.date == END]
    assert set(both["metric"]) == {"llm_requests", "llm_error_rate"} and len(both) == 2 * len(last)


@pytest.mark.slow
def test_time_arguments_dates_datetimes_iso_strings_end_exclusive(m: Monitor) -> None:
    def days(**kw: object) -> list[dt.date]:
        return sorted(set(m.figures("llm_requests", model="__all__", endpoint="__all__", **kw)["window_start"].dt.date))

    last_two = [END - dt.timedelta(days=1), END]
    assert days(start=END - dt.timedelta(days=1)) == last_two
    assert days(start=(END - dt.timedelta(days=1)).isoformat()) == last_two
    assert days(start=dt.datetime(2026, 11, 19)) == last_two
    assert days(start="2026-11-18T12:00") == last_two  # windows starting from then
    assert days(start=dt.datetime(2026, 11, 19, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == last_two
    assert days(end=END) == [END - dt.timedelta(days=o) for o in (3, 2, 1)]  # end is exclusive
    assert days(start=END, end=END) == []
    with pytest.raises(ValueError, match="not an ISO date"):
        m.figures("llm_requests", start="yesterday")
    with pytest.raises(ValueError, match="granularity 'weekly': use one of daily, hourly"):
        m.figures("llm_requests", granularity="weekly")


@pytest.mark.slow
def test_unknown_metric_or_label_is_named_with_the_valid_ones(m: Monitor) -> None:
    with pytest.raises(NotFound) as err:
        m.figures("llm_request")
    msg = str(err.value)
    assert msg.startswith("unknown metric 'llm_request' (did you mean llm_requests, ")
    assert "llm_error_rate, llm_errors" in msg and msg.endswith("; m.metrics() lists them")
    assert isinstance(err.value, LookupError)
    with pytest.raises(NotFound, match="no label 'modle' on llm_requests: its labels are endpoint, model"):
        m.figures("llm_requests", modle="gpt-4o")
    # A catalogue name without figures is valid: an empty frame with the columns.
    empty = m.figures("monitoring_window_provisional")
    assert empty.empty and list(empty.columns[:4]) == ["window_start", "window_end", "granularity", "metric"]
    listed = m.metrics()
    assert "llm_requests" in set(listed["metric"]) and listed["help"].str.len().min() > 0


@pytest.mark.slow
def test_runs_are_the_runs_table(m: Monitor, filled: tuple[str, Config]) -> None:
    store = Store(filled[1])
    with store.engine.connect() as conn:
        table = [dict(r) for r in conn.execute(sa.select(store.runs).order_by(store.runs.c.window_start)).mappings()]
    df = m.runs()
    assert len(df) == len(table) == DAYS
    assert df["run_id"].tolist() == [r["run_id"] for r in table]
    assert df["rows_accepted"].tolist() == [r["rows_accepted"] for r in table]
    assert df["details"].tolist() == [json.loads(r["details"]) for r in table]
    assert str(df["started_at"].dtype) == "datetime64[ns, UTC]"
    assert m.runs(start=END)["window_start"].dt.date.tolist() == [END]
    assert len(m.runs(status="success")) == DAYS and m.runs(status="failed").empty
    with pytest.raises(ValueError, match="run status 'ok': use one of running, success"):
        m.runs(status="ok")


@pytest.mark.slow
def test_alerts_are_the_alert_tables(m: Monitor, filled: tuple[str, Config]) -> None:
    alerts = AlertStore(filled[1])
    events = alerts.events_between()
    df = m.alerts()
    assert len(df) == len(events) > 0
    assert [(r.rule, r.status, r.value) for r in df.itertuples()] == [(e.rule, e.status, e.value) for e in events]
    assert df["labels"].tolist() == [json.loads(e.labels) for e in events]
    burst = m.alerts(status="firing", rule="ErrorRateHigh")
    assert burst["window_start"].dt.date.tolist() == [BURST] and burst["labels"][0]["model"] == "claude-3-5-sonnet"
    assert set(m.alerts(start=END)["window_start"].dt.date) == {END}
    with pytest.raises(NotFound, match="unknown alert rule 'ErorRateHigh': the config's rules are LatencyP95High"):
        m.alerts(rule="ErorRateHigh")
    states, stored = m.alert_states(), alerts.states()
    assert sorted(states["alert_id"]) == sorted(stored)
    assert {r.alert_id: (r.rule, r.status, r.labels) for r in states.itertuples()} == {
        k: (v.rule, v.status, v.labels_dict) for k, v in stored.items()
    }
    assert "firing" in set(states["status"]) and str(states["last_window_start"].dtype) == "datetime64[ns, UTC]"


@pytest.mark.slow
def test_experiment_agrees_with_the_stored_ab_figures(m: Monitor) -> None:
    view = m.experiment("prompt-v2")
    res = view.result
    assert view.window == daily_window(END) and res.looks == DAYS
    assert res.first_window == daily_window(END - dt.timedelta(days=DAYS - 1)).start
    figs = m.figures(start=END, end=END + dt.timedelta(days=1), experiment="prompt-v2")

    def stored(metric: str, **labels: str) -> float:
        rows = figs[figs["metric"] == metric]
        for k, v in labels.items():
            rows = rows[rows[k] == v]
        if "span" in rows and "span" not in labels:  # the cumulative SRM series has no span label
            rows = rows[rows["span"].isna()]
        return float(rows["value"].item())

    assert stored("ab_status") == STATUS_CODES[res.status]
    assert res.srm is not None and math.isclose(stored("ab_srm_p_value"), res.srm.p_value, rel_tol=1e-12)
    assert view.srm_p_value == res.srm.p_value
    metrics = {"output_tokens", "latency", "cost_per_request", "error_rate", "rating", "helpful"}
    assert {c.metric for c in res.comparisons} == metrics
    for c in res.comparisons:
        lab = {"variant": c.variant, "metric_label": c.metric}
        assert c.lift is not None and c.lift_ci is not None and c.p_value is not None and c.p_adjusted is not None
        assert math.isclose(stored("ab_lift", **lab), c.lift, rel_tol=1e-12)
        assert math.isclose(stored("ab_lift_ci_low", **lab), c.lift_ci[0], rel_tol=1e-12)
        assert math.isclose(stored("ab_lift_ci_high", **lab), c.lift_ci[1], rel_tol=1e-12)
        assert math.isclose(stored("ab_p_value", **lab), c.p_value, rel_tol=1e-12, abs_tol=1e-300)
        assert math.isclose(stored("ab_p_value_adjusted", **lab), c.p_adjusted, rel_tol=1e-12, abs_tol=1e-300)
        assert stored("ab_metric_status", **lab) == STATUS_CODES[c.status]
        assert c.mean_variant is not None and c.mean_control is not None
        assert math.isclose(stored("ab_metric_mean", variant=c.variant, metric_label=c.metric), c.mean_variant)
        assert math.isclose(stored("ab_metric_mean", variant="control", metric_label=c.metric), c.mean_control)
    table = view.to_frame()
    assert len(table) == len(res.comparisons) and table["lift"].tolist() == [c.lift for c in res.comparisons]
    assert "prompt-v2" in str(view) and res.status in str(view)
    with pytest.raises(NotFound, match=r"unknown experiment 'prompt-v3': the config .* lists prompt-v2"):
        m.experiment("prompt-v3")


@pytest.mark.slow
def test_drift_agrees_with_the_stored_drift_figures(m: Monitor) -> None:
    df = m.drift(END)
    figs = m.figures(start=END, end=END + dt.timedelta(days=1))
    score = {(r.feature, r.method): r.value for r in figs[figs["metric"] == "data_drift_score"].itertuples()}
    p = {r.feature: (r.method, r.value) for r in figs[figs["metric"] == "data_drift_p_value"].itertuples()}
    detected = {r.feature: bool(r.value) for r in figs[figs["metric"] == "data_drift_detected"].itertuples()}
    assert set(df["feature"]) == set(detected) and "language" in detected
    for r in df.itertuples():
        assert score[(r.feature, r.method)] == r.score and score[(r.feature, r.effect_method)] == r.effect
        assert p[r.feature] == (r.test_method, r.p_value) and detected[r.feature] == r.detected
    assert df.set_index("feature").loc["language", "detected"]
    assert df.equals(m.drift()) and df.equals(m.drift(daily_window(END))) and df.equals(m.drift("2026-11-20"))
    assert df.equals(m.drift(dt.datetime(2026, 11, 20, 15)))
    first = END - dt.timedelta(days=3)  # no reference yet: no drift figures
    with pytest.raises(NotFound, match=r"no drift figures for daily 2026-11-17 .*start at 2026-11-18 00:00, "):
        m.drift(first)


def test_score_methods_from_the_stored_rows() -> None:
    from aimon.api.views import _score_methods

    # Large reference: the score is the effect size, one row.
    assert _score_methods({"wasserstein": 0.2}, "ks") == ("wasserstein", "wasserstein")
    # Small reference: the test's statistic, and the effect size beside it.
    assert _score_methods({"ks": 0.3, "wasserstein": 0.2}, "ks") == ("ks", "wasserstein")
    # A configured distance without a p-value (psi): the test is another method.
    assert _score_methods({"psi": 0.4, "jensenshannon": 0.1}, "chisquare") == ("psi", "jensenshannon")
    assert _score_methods({}, None) == (None, None)


def test_dates_and_naive_times_are_local_as_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "wh.duckdb").touch()
    sqlite3.connect(tmp_path / "store.db").close()
    path = write_config(tmp_path, store=f"sqlite:///{tmp_path / 'store.db'}")
    cfg = load_config(path)
    local = aimon.open(cfg.model_copy(update={"windows": cfg.windows.model_copy(update={"timezone": "Europe/Berlin"})}))
    assert local._instant(dt.date(2026, 7, 1)) == dt.datetime(2026, 6, 30, 22)  # CEST, UTC+2
    assert local._instant("2026-11-20") == local._instant("2026-11-20T00:00") == dt.datetime(2026, 11, 19, 23)
    assert local._instant(dt.datetime(2026, 11, 20, 6)) == dt.datetime(2026, 11, 20, 5)
    assert local._instant("2026-11-20T06:00+00:00") == dt.datetime(2026, 11, 20, 6)
    assert local._instant(pd.Timestamp("2026-11-20 06:00", tz="UTC")) == dt.datetime(2026, 11, 20, 6)
    assert local.figures("llm_requests").empty and local.runs().empty and local.alerts().empty


def test_a_missing_store_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    with pytest.raises(StoreError, match=r"the metrics store .*wh.duckdb .* does not exist yet: run a window first"):
        aimon.open(path)
    assert not (tmp_path / "wh.duckdb").exists()


@pytest.mark.slow
def test_an_open_notebook_does_not_hold_the_duckdb_file(tmp_path: Path) -> None:
    """Between calls the handle holds no connection: a run in another process can write."""
    (tmp_path / "wh.duckdb").touch()
    path = write_config(tmp_path, store=f"duckdb:///{tmp_path / 'store.duckdb'}")
    cfg = load_config(path)
    store = Store(cfg)
    store.ensure()
    store.replace_window(daily_window(END), [MetricRecord.of("llm_requests", 5, model="m", endpoint="e")], "r1")
    store.engine.dispose()  # this process lets go of the file, as a finished run does
    notebook = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import aimon, sys; m = aimon.open({path!r}); print(m.figures('llm_requests')['value'].tolist(), "
            "flush=True); sys.stdin.readline()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert notebook.stdout is not None and notebook.stdout.readline().strip() == "[5.0]"
        import duckdb

        con = duckdb.connect(str(tmp_path / "store.duckdb"))  # read-write, while the notebook is open
        con.execute("CHECKPOINT")
        con.close()
    finally:
        notebook.communicate("\n", timeout=30)
    assert notebook.returncode == 0
