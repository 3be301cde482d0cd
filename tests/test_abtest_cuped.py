"""CUPED in the A/B analyzer, on real warehouses: each unit's mean of the metric since
the experiment's first window, adjusted by its mean over the lookback before it, equals
a per-unit regression (statsmodels OLS) computed from the rows with pandas; the
interval shrinks by ~sqrt(1 - rho^2); units without pre-period data or in several
variants are counted and left out; what cannot be computed says why."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from aimon.records import labels_json
from aimon.stats.abtests import msprt
from aimon.stats.cuped import cuped_test
from aimon.store.metrics import Store
from aimon.tasks.abtest.analyzer import analyze_abtest
from aimon.tasks.orchestration.run import open_window
from aimon.windows import daily_window
from tests.conftest import PG_URL, make_config, write_duckdb, write_sqlalchemy

EXP = "prompt-v3"
START = dt.date(2026, 11, 1)  # the experiment's first day; the pre-period is the 14 days before
DAYS = 3  # the analysed window is START + 2
LATENCY = [{"name": "latency", "type": "continuous", "column": "latency_seconds", "good": "lower"}]


def users_table(users: int = 1500, *, seed: int = 11, new_users: int = 100, both: int = 30) -> pd.DataFrame:
    """Users with a lasting latency level (their prompts' length), 0-3 requests a day over
    the 14 pre-period days (no experiment) and the experiment's days; treatment 5% faster.
    `new_users` appear only during the experiment; `both` users are seen in both variants."""
    rng = np.random.default_rng(seed)
    level = rng.lognormal(0.0, 0.5, users + new_users)
    variant = np.where(rng.random(users + new_users) < 0.5, "control", "treatment")
    frames = []
    for d in range(-14, DAYS):
        day = START + dt.timedelta(days=d)
        who = np.arange(users if d < 0 else users + new_users)
        k = rng.integers(0, 4, len(who))
        uid = np.repeat(who, k)
        n = len(uid)
        var = variant[uid].copy()
        if d >= 0 and both:
            flip = (uid < both) & (rng.random(n) < 0.5)
            var[flip] = np.where(var[flip] == "control", "treatment", "control")
        lat = level[uid] * rng.lognormal(0.0, 0.35, n) * np.where((d >= 0) & (var == "treatment"), 0.95, 1.0)
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": pd.Timestamp(day) + pd.to_timedelta(rng.uniform(0, 86400, n), unit="s"),
                    "request_id": [f"{d}-{i}" for i in range(n)],
                    "model": "gpt-4o",
                    "status": "ok",
                    "latency_seconds": lat,
                    "user_id": [f"u{u}" for u in uid],
                    "experiment": EXP if d >= 0 else None,
                    "variant": var if d >= 0 else None,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def config(url: str, **cuped: Any) -> Any:
    exp = {"name": EXP, "start": START.isoformat(), "metrics": LATENCY, **({"cuped": cuped} if cuped else {})}
    return make_config(url, experiments=[exp])


def run(cfg: Any, day: dt.date = START + dt.timedelta(days=DAYS - 1)) -> Any:
    return analyze_abtest(open_window(cfg, daily_window(day), Store(cfg)))


def figures(result: Any) -> dict[tuple[str, str], float]:
    return {(r.metric, r.labels_json): r.value for r in result.records}


def lab(variant: str = "treatment", **extra: str) -> str:
    return labels_json({"experiment": EXP, "metric": "latency", "variant": variant, **extra})


def reference(df: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Per user: the mean latency since START (y) and over the 14 days before (x), from
    the rows; those in both variants and those without x left out (and counted)."""
    t0 = pd.Timestamp(START)
    during = df[(df["timestamp"] >= t0) & (df["timestamp"] < t0 + pd.Timedelta(days=DAYS))]
    pre = df[(df["timestamp"] >= t0 - pd.Timedelta(days=14)) & (df["timestamp"] < t0)]
    g = during.groupby("user_id").agg(
        y=("latency_seconds", "mean"), variants=("variant", "nunique"), v=("variant", "first")
    )
    several = int((g["variants"] > 1).sum())
    g = g[g["variants"] == 1].join(pre.groupby("user_id")["latency_seconds"].mean().rename("x"))
    no_pre = int(g["x"].isna().sum())
    return g.dropna(subset=["x"]), no_pre, several


def test_cuped_figures_are_the_per_unit_regression_adjusted_estimate(tmp_path: Path) -> None:
    df = users_table()
    url = write_duckdb(tmp_path / "w.duckdb", df)
    got = figures(run(config(url)))
    units, no_pre, several = reference(df)
    c, t = units[units["v"] == "control"], units[units["v"] == "treatment"]
    want = cuped_test(c["y"].to_numpy(), c["x"].to_numpy(), t["y"].to_numpy(), t["x"].to_numpy())
    # The adjusted difference is the treatment coefficient of y ~ 1 + treatment + x.
    design = np.column_stack([np.ones(len(units)), (units["v"] == "treatment").to_numpy(float), units["x"]])
    ols = sm.OLS(units["y"].to_numpy(), design).fit()
    assert want.test.diff == pytest.approx(ols.params[1], rel=1e-9)
    assert got[("ab_cuped_lift", lab())] == pytest.approx(want.lift, rel=1e-9)
    assert got[("ab_cuped_variance_reduction", lab())] == pytest.approx(want.variance_reduction, rel=1e-9)
    seq = msprt(want.lift, want.lift_variance, 0.05**2)  # sequential by default, tau = the MDE
    assert got[("ab_cuped_p_value", lab())] == pytest.approx(seq.p_value, rel=1e-9)
    assert got[("ab_cuped_lift_ci_low", lab())] == pytest.approx(seq.ci_low, rel=1e-9)
    assert got[("ab_cuped_units", lab())] == len(t) and got[("ab_cuped_units", lab("control"))] == len(c)
    # The 100 new users and the 30 seen in both variants are counted, not silently dropped.
    assert no_pre > 50 and several > 10
    no_pre_key = labels_json({"experiment": EXP, "metric": "latency", "reason": "no_pre_period"})
    assert got[("ab_cuped_excluded_units", no_pre_key)] == no_pre
    several_key = labels_json({"experiment": EXP, "reason": "several_variants"})
    assert got[("ab_cuped_excluded_units", several_key)] == several
    # A lasting per-user level: the adjustment removes most of the variance, and the
    # interval shrinks by about sqrt(1 - rho^2).
    assert want.variance_reduction > 0.3
    assert want.test.se / want.unadjusted_se == pytest.approx(np.sqrt(1 - want.rho**2), rel=0.02)
    # Fixed-horizon: the Welch p-value of the adjusted per-unit means.
    fixed = figures(
        run(
            make_config(
                url, experiments=[{"name": EXP, "start": START.isoformat(), "metrics": LATENCY, "sequential": False}]
            )
        )
    )
    assert fixed[("ab_cuped_p_value", lab())] == pytest.approx(want.test.p_value, rel=1e-9)
    assert fixed[("ab_cuped_lift_ci_high", lab())] == pytest.approx(want.lift_ci_high, rel=1e-9)


def test_the_same_cuped_figures_on_sqlite_and_postgresql(tmp_path: Path, pg_schema: str) -> None:
    df = users_table(400, new_users=20, both=5)
    want = {k: v for k, v in figures(run(config(write_duckdb(tmp_path / "w.duckdb", df)))).items() if "cuped" in k[0]}
    assert ("ab_cuped_lift", lab()) in want
    sqlite = f"sqlite:///{tmp_path / 'w.sqlite'}"
    write_sqlalchemy(sqlite, df, "interactions")
    pg = f"{PG_URL}?options=-csearch_path%3D{pg_schema}"
    write_sqlalchemy(pg, df, "interactions")
    for url in (sqlite, pg):
        got = {k: v for k, v in figures(run(config(url))).items() if "cuped" in k[0]}
        assert got.keys() == want.keys(), url
        for k, v in want.items():
            assert got[k] == pytest.approx(v, rel=1e-9), (url, k)


def test_what_cuped_cannot_compute_is_said_and_the_rest_still_runs(tmp_path: Path) -> None:
    df = users_table(300, new_users=0, both=0)
    url = write_duckdb(tmp_path / "w.duckdb", df)
    res = run(config(url, min_units=1000))
    assert ("ab_lift", lab()) in figures(res)  # the request-level analysis is unaffected
    assert not any(k[0] == "ab_cuped_lift" for k in figures(res))
    assert any("CUPED latency (treatment, per user_id): not computed: fewer than 1000 units" in n for n in res.notes)
    none = write_duckdb(tmp_path / "n.duckdb", df.drop(columns=["user_id"]))
    res = run(config(none))
    assert any("CUPED skipped: the table has no unit_id or user_id column" in n for n in res.notes)
    res = run(config(url, unit="account"))
    assert any("CUPED skipped: the table has no 'account' column" in n for n in res.notes)
    # A unit_id column is preferred to user_id.
    both = write_duckdb(tmp_path / "u.duckdb", df.assign(unit_id="a-" + df["user_id"]))
    assert any("per unit_id" in n for n in run(config(both)).notes)
    off = run(config(url, enabled=False))
    assert not any(k[0].startswith("ab_cuped") for k in figures(off))
