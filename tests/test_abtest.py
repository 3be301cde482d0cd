"""The A/B analyzer on real warehouses: cumulative statistics equal a one-shot
computation over all the experiment's rows (scipy/statsmodels on pandas), reruns
replace, catch-up fills earlier windows, SRM, feedback joins, decisions, bad input."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest

from aimon.errors import ConfigError
from aimon.records import labels_json
from aimon.store.abstats import ABStatsStore
from aimon.store.metrics import Store
from aimon.tasks.abtest.analyzer import analyze_abtest
from aimon.tasks.abtest.results import STATUS_CODES
from aimon.tasks.orchestration.run import open_window
from aimon.windows import daily_window
from tests import reference
from tests.conftest import DAY, PG_URL, make_config, write_duckdb, write_sqlalchemy

EXP = "prompt-v2"
START = DAY - dt.timedelta(days=2)
METRICS = [
    {"name": "output_tokens", "type": "continuous", "column": "output_tokens", "good": "lower"},
    {"name": "latency", "type": "continuous", "column": "latency_seconds", "good": "lower"},
    {"name": "error_rate", "type": "binary", "column": "error", "good": "lower", "mde": 0.5},
    {
        "name": "cost_per_1k_output_tokens",
        "type": "ratio",
        "numerator": "cost_usd",
        "denominator": "output_tokens",
        "scale": 1000,
        "good": "lower",
    },
]


def experiment(**overrides: Any) -> dict[str, Any]:
    return {
        "name": EXP,
        "start": START.isoformat(),
        "variants": ["control", "treatment"],
        "control": "control",
        "metrics": METRICS,
        **overrides,
    }


def config(url: str, *experiments: dict[str, Any], **warehouse: Any):
    return make_config(
        url,
        experiments=list(experiments) or [experiment()],
        warehouse={"interactions_table": "interactions", **warehouse},
    )


def run_day(cfg, day: dt.date):
    ctx = open_window(cfg, daily_window(day), Store(cfg))
    return analyze_abtest(ctx)


def figures(result) -> dict[tuple[str, str], float]:
    return {(r.metric, r.labels_json): r.value for r in result.records}


def key(metric: str, variant: str | None = None, name: str | None = None) -> tuple[str, str]:
    labels = {"experiment": EXP}
    if variant:
        labels["variant"] = variant
    if name:
        labels["metric"] = name
    return metric, labels_json(labels)


def experiment_rows(df: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Accepted rows of the experiment in local days [start, end], by an independent path."""
    rows = reference.accepted(
        reference.in_window(df, dt.datetime.combine(start, dt.time()), dt.datetime.combine(end, dt.time()))
    )
    rows = rows[rows["experiment"] == EXP]
    return rows.assign(error=(rows["status"].map(reference.status_class) != "ok").astype(int))


def arm(rows: pd.DataFrame, variant: str, col: str) -> np.ndarray:
    return rows.loc[rows["variant"] == variant, col].dropna().to_numpy(dtype="float64")


def delta_ratio(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Ratio of sums and its delta-method variance, written out from the textbook."""
    n, mx, my = len(x), x.mean(), y.mean()
    r = mx / my
    vx, vy, cxy = np.var(x, ddof=1), np.var(y, ddof=1), np.cov(x, y, ddof=1)[0, 1]
    return r, (vx / my**2 - 2 * mx * cxy / my**3 + mx**2 * vy / my**4) / n


@pytest.mark.parametrize("backend", ["duckdb", "sqlite"])
def test_cumulative_fixed_horizon_equals_one_shot_scipy_over_all_rows(
    backend: str, request, frame: pd.DataFrame
) -> None:
    url = request.getfixturevalue("duck_url" if backend == "duckdb" else "sqlite_url")
    cfg = config(url, experiment(sequential=False, correction="none"))
    for day in (START, START + dt.timedelta(days=1), DAY):
        result = run_day(cfg, day)
    got = figures(result)
    rows = experiment_rows(frame, START, DAY + dt.timedelta(days=1))

    # continuous: Welch over every row since the start, as scipy computes it in one go
    for name, col in (("output_tokens", "output_tokens"), ("latency", "latency_seconds")):
        c, t = arm(rows, "control", col), arm(rows, "treatment", col)
        assert got[key("ab_metric_mean", "control", name)] == pytest.approx(c.mean(), rel=1e-9)
        assert got[key("ab_metric_mean", "treatment", name)] == pytest.approx(t.mean(), rel=1e-9)
        ref = stats.ttest_ind(t, c, equal_var=False)
        assert got[key("ab_p_value", "treatment", name)] == pytest.approx(ref.pvalue, rel=1e-6)
        ci = ref.confidence_interval(0.95)
        assert got[key("ab_diff_ci_low", "treatment", name)] == pytest.approx(ci.low, rel=1e-6)
        assert got[key("ab_lift", "treatment", name)] == pytest.approx(t.mean() / c.mean() - 1, rel=1e-9)

    # binary: the error rate, against statsmodels' pooled z test
    ec, et = arm(rows, "control", "error"), arm(rows, "treatment", "error")
    _, p = proportions_ztest([et.sum(), ec.sum()], [len(et), len(ec)])
    assert got[key("ab_p_value", "treatment", "error_rate")] == pytest.approx(p, rel=1e-6)
    assert got[key("ab_metric_mean", "control", "error_rate")] == pytest.approx(ec.mean())

    # ratio: cost per 1k output tokens over rows having both, delta method by hand
    both = rows.dropna(subset=["cost_usd", "output_tokens"])
    rc, vc = delta_ratio(arm(both, "control", "cost_usd"), arm(both, "control", "output_tokens"))
    rt, vt = delta_ratio(arm(both, "treatment", "cost_usd"), arm(both, "treatment", "output_tokens"))
    z = (rt - rc) / math.sqrt(vc + vt)
    ratio = "cost_per_1k_output_tokens"
    assert got[key("ab_metric_mean", "control", ratio)] == pytest.approx(1000 * rc, rel=1e-9)
    assert got[key("ab_diff", "treatment", ratio)] == pytest.approx(1000 * (rt - rc), rel=1e-6)
    assert got[key("ab_p_value", "treatment", ratio)] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-6)

    # assignments and SRM over the same rows
    n = rows.groupby("variant").size()
    assert got[key("ab_units", "control")] == n["control"]
    assert got[key("ab_srm_p_value")] == pytest.approx(stats.chisquare([n["control"], n["treatment"]]).pvalue)


def test_stored_window_stats_add_up_to_the_one_shot_moments(duck_url: str, frame: pd.DataFrame) -> None:
    cfg = config(duck_url)
    for day in (START, START + dt.timedelta(days=1), DAY):
        run_day(cfg, day)
    abstore = ABStatsStore(cfg)
    stored = abstore.load(EXP, "daily", daily_window(START).start, daily_window(DAY).start)
    assert len(stored) == 3
    rows = experiment_rows(frame, START, DAY + dt.timedelta(days=1))
    for variant in ("control", "treatment"):
        x = arm(rows, variant, "output_tokens")
        parts = [
            r.moments for rows_ in stored.values() for r in rows_ if (r.variant, r.metric) == (variant, "output_tokens")
        ]
        assert sum(p.n for p in parts) == len(x)
        assert sum(p.sum_x for p in parts) == pytest.approx(x.sum(), rel=1e-12)
        assert sum(p.sum_x2 for p in parts) == pytest.approx((x * x).sum(), rel=1e-12)


def test_rerun_replaces_the_window_and_catch_up_gives_the_same_result(
    tmp_path: Path, duck_url: str, frame: pd.DataFrame
) -> None:
    # Day by day...
    cfg = config(duck_url)
    for day in (START, START + dt.timedelta(days=1), DAY):
        daily = figures(run_day(cfg, day))
    again = run_day(cfg, DAY)
    assert figures(again) == daily
    engine = sa.create_engine(duck_url)
    with engine.connect() as conn:
        n_rows = conn.execute(sa.text("select count(*) from monitoring_ab_stats")).scalar_one()
    engine.dispose()
    # 3 windows x 2 variants x (4 metrics + assignments), no duplicates after the rerun
    assert n_rows == 3 * 2 * 5
    # ...and a first run on the last day, which catches up the two earlier windows.
    fresh = write_duckdb(tmp_path / "fresh.duckdb", frame)
    once = run_day(config(fresh), DAY)
    assert figures(once) == pytest.approx(daily)
    assert any("computed the statistics of 2 earlier windows" in n for n in once.notes)


def test_start_none_begins_at_the_first_row_of_the_experiment(duck_url: str) -> None:
    res = run_day(config(duck_url, experiment(start=None)), DAY)
    assert res.details["experiments"][0]["looks"] == 3  # DAY-2, DAY-1, DAY: the frame's first day
    assert res.details["experiments"][0]["first_window"] == daily_window(START).start


def test_sequential_is_the_default_and_its_p_value_is_the_running_minimum(duck_url: str) -> None:
    cfg = config(duck_url)
    assert cfg.experiments[0].sequential
    ps = []
    for day in (START, START + dt.timedelta(days=1), DAY):
        got = figures(run_day(cfg, day))
        ps.append(got[key("ab_p_value", "treatment", "output_tokens")])
        low, high = (
            got[key("ab_lift_ci_low", "treatment", "output_tokens")],
            got[key("ab_lift_ci_high", "treatment", "output_tokens")],
        )
        assert low <= got[key("ab_lift", "treatment", "output_tokens")] <= high or low > 0 or high < 0
    assert ps == sorted(ps, reverse=True)  # never rises: an always-valid p-value
    fixed = figures(run_day(config(duck_url, experiment(sequential=False)), DAY))
    # The always-valid interval is wider than the fixed-horizon one.
    seq_width = (
        got[key("ab_lift_ci_high", "treatment", "output_tokens")]
        - got[key("ab_lift_ci_low", "treatment", "output_tokens")]
    )
    fix_width = (
        fixed[key("ab_lift_ci_high", "treatment", "output_tokens")]
        - fixed[key("ab_lift_ci_low", "treatment", "output_tokens")]
    )
    assert seq_width > fix_width


def synthetic(
    days: int, per_day: int, *, share_treatment: float = 0.5, lift: float = 0.0, seed: int = 5
) -> pd.DataFrame:
    """A plain experiment table: output tokens lognormal, treatment scaled by 1 + lift."""
    rng = np.random.default_rng(seed)
    frames = []
    for d in range(days):
        day = START + dt.timedelta(days=d)
        treat = rng.random(per_day) < share_treatment
        tokens = rng.lognormal(5.5, 0.7, per_day) * np.where(treat, 1 + lift, 1.0)
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": pd.Timestamp(day) + pd.to_timedelta(rng.uniform(0, 86400, per_day), unit="s"),
                    "request_id": [f"d{d}-{i}" for i in range(per_day)],
                    "model": "gpt-4o",
                    "status": np.where(rng.random(per_day) < 0.02, "timeout", "ok"),
                    "output_tokens": tokens.round().astype("int64"),
                    "experiment": EXP,
                    "variant": np.where(treat, "treatment", "control"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


TOKENS_ONLY = [{"name": "output_tokens", "type": "continuous", "column": "output_tokens", "good": "lower"}]


def test_a_52_48_split_is_flagged_as_srm_and_marks_the_experiment_invalid(tmp_path: Path) -> None:
    url = write_duckdb(tmp_path / "srm.duckdb", synthetic(1, 100_000, share_treatment=0.48))
    res = run_day(config(url, experiment(start=None, metrics=TOKENS_ONLY)), START)
    got = figures(res)
    assert got[key("ab_srm_p_value")] < 0.001
    assert got[key("ab_srm_detected")] == 1
    assert got[key("ab_status")] == STATUS_CODES["invalid"]
    assert got[key("ab_metric_status", "treatment", "output_tokens")] == STATUS_CODES["invalid"]
    assert any("sample ratio mismatch" in n for n in res.notes)

    fair = write_duckdb(tmp_path / "fair.duckdb", synthetic(1, 100_000, share_treatment=0.5))
    got = figures(run_day(config(fair, experiment(start=None, metrics=TOKENS_ONLY)), START))
    assert got[key("ab_srm_p_value")] > 0.001 and got[key("ab_srm_detected")] == 0
    assert got[key("ab_status")] != STATUS_CODES["invalid"]


@pytest.mark.parametrize(
    "good,lift,status",
    [("lower", -0.08, "improvement"), ("higher", -0.08, "regression"), ("lower", 0.0, None)],
)
def test_decision_status(tmp_path: Path, good: str, lift: float, status: str | None) -> None:
    url = write_duckdb(tmp_path / "wh.duckdb", synthetic(3, 4000, lift=lift))
    metrics = [{**TOKENS_ONLY[0], "good": good}]
    res = run_day(config(url, experiment(metrics=metrics, mde=0.05)), START + dt.timedelta(days=2))
    got = figures(res)
    if status is not None:
        assert got[key("ab_status")] == STATUS_CODES[status]
        assert got[key("ab_regression_detected", "treatment", "output_tokens")] == (status == "regression")
        assert got[key("ab_lift", "treatment", "output_tokens")] == pytest.approx(lift, abs=0.03)
        assert any(status.split("_")[0] in n for n in res.notes)
    else:
        # No effect, 12k requests: not enough for a 5% MDE sequentially -> collecting,
        # with the sample size still needed.
        assert got[key("ab_status")] in (STATUS_CODES["collecting"], STATUS_CODES["no_difference"])
        if got[key("ab_status")] == STATUS_CODES["collecting"]:
            assert got[key("ab_sample_size")] > 0
            assert any("needs ~" in n for n in res.notes)


def test_no_difference_once_the_sample_size_for_the_mde_is_reached(tmp_path: Path) -> None:
    url = write_duckdb(tmp_path / "wh.duckdb", synthetic(3, 20_000, lift=0.0))
    res = run_day(config(url, experiment(metrics=TOKENS_ONLY, mde=0.05)), START + dt.timedelta(days=2))
    got = figures(res)
    assert got[key("ab_status")] == STATUS_CODES["no_difference"]
    # ...because the units it has exceed what a 5% effect needs at 80% power
    units = got[key("ab_units", "control")] + got[key("ab_units", "treatment")]
    assert 1000 < got[key("ab_sample_size")] <= units == 60_000
    short = run_day(config(url, experiment(metrics=TOKENS_ONLY, mde=0.01)), START + dt.timedelta(days=2))
    assert figures(short)[key("ab_status")] == STATUS_CODES["collecting"]
    assert figures(short)[key("ab_sample_size")] > 60_000


def test_feedback_metrics_join_on_request_id(tmp_path: Path, frame: pd.DataFrame) -> None:
    rng = np.random.default_rng(9)
    ids = frame.loc[frame["experiment"] == EXP, "request_id"].sample(frac=0.3, random_state=1).tolist()
    fb = pd.DataFrame(
        {
            "request_id": ids + ids[:20],  # 20 requests rated twice: their mean counts once
            "timestamp": pd.Timestamp(DAY),
            "rating": rng.integers(1, 6, len(ids) + 20),
            "helpful": rng.random(len(ids) + 20) < 0.6,
        }
    )
    url = write_duckdb(tmp_path / "wh.duckdb", frame)
    write_duckdb(tmp_path / "wh.duckdb", fb, table="feedback")
    metrics = [
        {"name": "rating", "type": "continuous", "column": "rating", "source": "feedback", "good": "higher"},
        {"name": "helpful", "type": "binary", "column": "helpful", "source": "feedback", "good": "higher"},
    ]
    cfg = config(url, experiment(metrics=metrics, start=DAY.isoformat(), sequential=False), feedback_table="feedback")
    got = figures(run_day(cfg, DAY))
    per_request = fb.groupby("request_id").agg(rating=("rating", "mean"), helpful=("helpful", "max"))
    rows = experiment_rows(frame, DAY, DAY + dt.timedelta(days=1)).merge(per_request, on="request_id", how="left")
    for variant in ("control", "treatment"):
        r = arm(rows, variant, "rating")
        assert got[key("ab_metric_mean", variant, "rating")] == pytest.approx(r.mean(), rel=1e-9)
        h = rows.loc[rows["variant"] == variant, "helpful"].dropna().astype(float)
        assert got[key("ab_metric_mean", variant, "helpful")] == pytest.approx(h.mean(), rel=1e-9)
    ref = stats.ttest_ind(arm(rows, "treatment", "rating"), arm(rows, "control", "rating"), equal_var=False)
    assert got[key("ab_p_value", "treatment", "rating")] == pytest.approx(ref.pvalue, rel=1e-6)


def test_missing_columns_and_feedback_table_are_notes_not_errors(duck_url: str) -> None:
    metrics = [
        *TOKENS_ONLY,
        {"name": "quality", "type": "continuous", "column": "judge_score", "good": "higher"},
        {"name": "rating", "type": "continuous", "column": "rating", "source": "feedback", "good": "higher"},
    ]
    res = run_day(config(duck_url, experiment(metrics=metrics)), DAY)
    assert any("metric quality skipped" in n and "'judge_score'" in n for n in res.notes)
    assert any("metric rating skipped" in n and "warehouse.feedback_table is not set" in n for n in res.notes)
    assert key("ab_p_value", "treatment", "output_tokens") in figures(res)
    res = run_day(config(duck_url, experiment(metrics=metrics), feedback_table="feedback"), DAY)
    assert any("metric rating skipped" in n and "'feedback' not found" in n for n in res.notes)


def test_a_non_binary_column_as_a_binary_metric_is_a_clear_error(duck_url: str) -> None:
    metrics = [{"name": "tokens_flag", "type": "binary", "column": "output_tokens", "good": "lower"}]
    with pytest.raises(ValueError, match=r"binary metric 'tokens_flag' has values from .* column 'output_tokens'"):
        run_day(config(duck_url, experiment(metrics=metrics)), DAY)


def test_unknown_variant_values_are_counted_and_named(tmp_path: Path) -> None:
    df = synthetic(1, 2000)
    df.loc[df.index[:30], "variant"] = "treatment-b"
    url = write_duckdb(tmp_path / "wh.duckdb", df)
    res = run_day(config(url, experiment(metrics=TOKENS_ONLY)), START)
    assert any("'treatment-b' 30" in n for n in res.notes)
    assert any("30 requests carry a variant value not in the config" in n for n in res.notes)


def test_an_experiment_without_rows_is_collecting(duck_url: str) -> None:
    res = run_day(config(duck_url, experiment(name="nope", start=None)), DAY)
    assert figures(res)[reference.key("ab_status", experiment="nope")] == STATUS_CODES["collecting"]
    assert any("no rows with experiment = 'nope'" in n for n in res.notes)


def test_config_errors_name_the_key(duck_url: str) -> None:
    with pytest.raises(ConfigError, match="control 'base' is not one of the variants"):
        config(duck_url, experiment(control="base"))
    with pytest.raises(ConfigError, match="split must give a share for each"):
        config(duck_url, experiment(split={"control": 0.5}))
    with pytest.raises(ConfigError, match="ratio metric 'r' needs numerator and denominator"):
        config(duck_url, experiment(metrics=[{"name": "r", "type": "ratio", "column": "x", "good": "lower"}]))
    with pytest.raises(ConfigError, match=r"experiments\.0\.metrics\.0\.good"):
        config(duck_url, experiment(metrics=[{"name": "r", "type": "continuous", "column": "x", "good": "up"}]))
    with pytest.raises(ConfigError, match=r"unknown key 'experiments\.0\.sequentail'"):
        config(duck_url, experiment(sequentail=False))


@pytest.mark.postgres
def test_same_figures_on_postgresql(pg_schema: str, duck_url: str, frame: pd.DataFrame) -> None:
    url = f"{PG_URL}?options=-csearch_path%3D{pg_schema}"
    write_sqlalchemy(url, frame, "interactions")
    want = figures(run_day(config(duck_url), DAY))
    got = figures(run_day(config(url), DAY))
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-9), k


@pytest.mark.usefixtures("prefect_harness")
def test_monitor_window_stores_the_ab_figures_and_prints_the_table(tmp_path: Path, duck_url: str) -> None:
    import yaml
    from rich.console import Console

    from aimon.cli.summary import print_summary
    from aimon.flows.monitor import monitor_window

    path = tmp_path / "monitoring.yaml"
    data = {"warehouse": {"url": duck_url, "interactions_table": "interactions"}, "experiments": [experiment()]}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    summary = monitor_window(window_start=DAY.isoformat(), config_path=str(path))
    assert summary.status == "success", summary.outcomes
    window = daily_window(DAY)
    stored = Store(make_config(duck_url)).figures(granularity="daily", start_from=window.start, before=window.end)
    names = {f.metric for f in stored}
    assert {"ab_status", "ab_srm_p_value", "ab_metric_mean", "ab_lift", "ab_lift_ci_low", "ab_p_value"} <= names
    assert {"llm_requests", "monitoring_rows"} <= names  # the other analyzers still ran
    console = Console(record=True, width=160)
    print_summary(summary, console)
    text = console.export_text()
    assert "experiment prompt-v2:" in text and "cost_per_1k_output_tokens" in text and "p adj." in text


def test_hourly_windows_catch_up_within_the_day_and_equal_one_shot(duck_url: str, frame: pd.DataFrame) -> None:
    from aimon.windows import window_containing

    cfg = config(duck_url, experiment(start=DAY.isoformat(), sequential=False, correction="none"))
    window = window_containing(dt.datetime.combine(DAY, dt.time(5, 30)), "hourly")
    res = analyze_abtest(open_window(cfg, window, Store(cfg)))
    assert any("computed the statistics of 5 earlier windows" in n for n in res.notes)
    assert res.details["experiments"][0]["looks"] == 6
    rows = reference.accepted(reference.in_window(frame, dt.datetime.combine(DAY, dt.time()), window.end))
    rows = rows[rows["experiment"] == EXP]
    c, t = arm(rows, "control", "output_tokens"), arm(rows, "treatment", "output_tokens")
    got = figures(res)
    assert got[key("ab_metric_mean", "treatment", "output_tokens")] == pytest.approx(t.mean(), rel=1e-9)
    ref = stats.ttest_ind(t, c, equal_var=False)
    assert got[key("ab_p_value", "treatment", "output_tokens")] == pytest.approx(ref.pvalue, rel=1e-6)
    # Hourly and daily statistics are kept apart.
    assert not ABStatsStore(cfg).covered_windows(EXP, "daily", ["output_tokens"], window.start, window.end)


def test_daily_windows_follow_the_configured_timezone(duck_url: str, frame: pd.DataFrame) -> None:
    tz = "America/New_York"
    cfg = make_config(
        duck_url,
        windows={"timezone": tz},
        experiments=[experiment(start=(START + dt.timedelta(days=1)).isoformat(), sequential=False)],
    )
    first, last = daily_window(START + dt.timedelta(days=1), tz), daily_window(DAY, tz)
    res = analyze_abtest(open_window(cfg, last, Store(cfg)))
    rows = reference.accepted(reference.in_window(frame, first.start, last.end))
    rows = rows[rows["experiment"] == EXP]
    got = figures(res)
    assert got[key("ab_units", "control")] == (rows["variant"] == "control").sum()
    t = arm(rows, "treatment", "latency_seconds")
    assert got[key("ab_metric_mean", "treatment", "latency")] == pytest.approx(t.mean(), rel=1e-9)


def test_concurrent_windows_like_a_backfill_store_each_window_once(tmp_path: Path, frame: pd.DataFrame) -> None:
    """Four windows analysed at once on a fresh store (a backfill with concurrency 4):
    they race to create the table and to catch up the same earlier windows."""
    from concurrent.futures import ThreadPoolExecutor

    url = write_duckdb(tmp_path / "wh.duckdb", frame)
    cfg = config(url)
    days = [START + dt.timedelta(days=i) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda day: run_day(cfg, day), days))
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        per_window = conn.execute(
            sa.text("select window_start, count(*) from monitoring_ab_stats group by 1 order by 1")
        ).fetchall()
    engine.dispose()
    assert [n for _, n in per_window] == [2 * 5] * 4
    assert figures(run_day(cfg, days[-1])) == figures(results[-1])


def _looks(days: int, per_arm: int, effects: dict[str, list[float]], seed: int = 3) -> list[dict]:
    """Per-day statistics for metrics whose treatment effect may change by day."""
    from aimon.stats.abtests import Moments
    from aimon.store.abstats import ASSIGNMENTS

    rng = np.random.default_rng(seed)
    out = []
    for d in range(days):
        look = {("control", ASSIGNMENTS): Moments(per_arm), ("treatment", ASSIGNMENTS): Moments(per_arm)}
        for name, lifts in effects.items():
            look[("control", name)] = Moments.of(rng.lognormal(0, 0.5, per_arm))
            look[("treatment", name)] = Moments.of(rng.lognormal(0, 0.5, per_arm) * (1 + lifts[d]))
        out.append(look)
    return out


def test_a_regression_on_one_metric_outranks_an_improvement_on_another() -> None:
    from aimon.config.analyses import ExperimentConfig
    from aimon.tasks.abtest.looks import analyze_looks

    exp = ExperimentConfig.model_validate(
        {
            "name": "e",
            "metrics": [
                {"name": "tokens", "type": "continuous", "column": "output_tokens", "good": "lower"},
                {"name": "quality", "type": "continuous", "column": "judge", "good": "higher"},
            ],
        }
    )
    res = analyze_looks(exp, _looks(5, 3000, {"tokens": [-0.1] * 5, "quality": [-0.1] * 5}))
    by_metric = {c.metric: c.status for c in res.comparisons}
    assert by_metric == {"tokens": "improvement", "quality": "regression"}
    assert res.status == "regression"


def test_an_effect_that_flips_sign_is_reported_not_hidden() -> None:
    from aimon.config.analyses import ExperimentConfig
    from aimon.tasks.abtest.looks import analyze_looks
    from aimon.tasks.abtest.records import experiment_notes

    exp = ExperimentConfig.model_validate(
        {"name": "e", "metrics": [{"name": "m", "type": "continuous", "column": "x", "good": "higher"}]}
    )
    res = analyze_looks(exp, _looks(8, 5000, {"m": [0.15] * 3 + [-0.3] * 5}))
    comp = res.comparisons[0]
    # Significant early (the always-valid p keeps it), but the intervals stopped overlapping.
    assert comp.p_value is not None and comp.p_value < 0.05
    assert comp.reason is not None and "not stable" in comp.reason
    assert any("not stable over time" in n for n in experiment_notes(res, daily_window(DAY), 0))
