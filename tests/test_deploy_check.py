"""Planned changes: `aimon annotate`, a new model detected in the data, the
post-deployment checks against statsmodels/scipy on known counts, a fine rollout that
passes and a regressed one that pages once (DeploymentRegression, the default rule)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest
from typer.testing import CliRunner

from aimon.cli.app import app
from aimon.config import Config
from aimon.records import MetricRecord
from aimon.store.alerts import AlertStore
from aimon.store.deployments import DeploymentStore
from aimon.store.metrics import Store
from aimon.tasks.alerts.pipeline import alert_window
from aimon.tasks.deploy import analyze_deployments, error_check, latency_check, quality_check
from aimon.tasks.orchestration.run import open_window
from aimon.windows import daily_window
from tests.conftest import DAY, make_config, write_duckdb

ROOT = Path(__file__).resolve().parents[1]
START = DAY - dt.timedelta(days=10)


def test_the_checks_agree_with_statsmodels_and_scipy() -> None:
    e = error_check(60, 1000, 100, 5000, limit=2.0, alpha=0.01)
    _, p = proportions_ztest([60, 100], [1000, 5000], alternative="larger")
    assert e.p_value == pytest.approx(p, rel=1e-9) and e.ratio == pytest.approx(0.06 / 0.02)
    assert e.failed  # 3x the error rate, p ~ 1e-15
    # Past the ratio but within noise (3 errors in 100 against 1%): not failed.
    small = error_check(3, 100, 50, 5000, limit=2.0, alpha=0.01)
    assert small.ratio > 2 and not small.failed
    assert small.p_value == pytest.approx(proportions_ztest([3, 50], [100, 5000], alternative="larger")[1], rel=1e-9)

    q = quality_check(700, 1000, 4000, 5000, limit=0.9, alpha=0.01)
    assert q.p_value == pytest.approx(proportions_ztest([700, 4000], [1000, 5000], alternative="smaller")[1], rel=1e-9)
    assert q.ratio == pytest.approx(0.7 / 0.8) and q.failed
    assert not quality_check(790, 1000, 4000, 5000, limit=0.9, alpha=0.01).failed

    rng = np.random.default_rng(3)
    base = rng.lognormal(-0.7, 0.4, 4000)
    slow = rng.lognormal(-0.7, 0.4, 800) * 1.8
    lat = latency_check(slow, base, limit=1.5, alpha=0.01)
    assert lat.ratio == pytest.approx(np.quantile(slow, 0.95) / np.quantile(base, 0.95))
    assert lat.p_value == pytest.approx(stats.mannwhitneyu(slow, base, alternative="greater").pvalue, rel=1e-9)
    assert lat.failed
    same = latency_check(rng.lognormal(-0.7, 0.4, 800), base, limit=1.5, alpha=0.01)
    assert same.ratio < 1.5 and not same.failed


def frame(
    days: int, new_from: int | None, *, slow: float = 1.0, errors: float = 0.01, acc: float = 0.8
) -> pd.DataFrame:
    """m-old every day (1,000 rows); m-new from day `new_from` (400 rows a day), with its
    latency x `slow`, error share `errors` and accuracy `acc`."""
    rng = np.random.default_rng(5)
    parts = []
    for d in range(days):
        day = pd.Timestamp(START + dt.timedelta(days=d))
        for model, n, f, err, a in [("m-old", 1000, 1.0, 0.01, 0.8), ("m-new", 400, slow, errors, acc)]:
            if model == "m-new" and (new_from is None or d < new_from):
                continue
            label = rng.choice(["a", "b"], n)
            right = rng.random(n) < a
            parts.append(
                pd.DataFrame(
                    {
                        "timestamp": day + pd.to_timedelta(np.sort(rng.uniform(0, 86_399, n)), unit="s"),
                        "model": model,
                        "endpoint": "chat",
                        "status": np.where(rng.random(n) < err, "timeout", "ok"),
                        "latency_seconds": rng.lognormal(-0.7, 0.4, n) * f,
                        "label": label,
                        "prediction": np.where(right, label, np.where(label == "a", "b", "a")),
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


def setup(tmp_path: Path, df: pd.DataFrame, **overrides: Any) -> Config:
    url = write_duckdb(tmp_path / "wh.duckdb", df)
    cfg = make_config(url, budgets=[], **overrides)
    Store(cfg).ensure()
    return cfg


def analyze(cfg: Config, day: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], Any]:
    ctx = open_window(cfg, daily_window(START + dt.timedelta(days=day)), Store(cfg))
    res = analyze_deployments(ctx)
    return {(r.metric, r.labels): r.value for r in res.records} | {("notes", ()): res.notes}


def key(metric: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (metric, tuple(sorted(labels.items())))


def test_a_new_model_is_detected_once_and_a_fine_rollout_passes(tmp_path: Path) -> None:
    cfg = setup(tmp_path, frame(12, new_from=8))
    assert not any(k[0] == "deployment_detected" for k in analyze(cfg, 0))  # the data's first day
    assert DeploymentStore(cfg).find() == []
    assert not any(k[0] == "deployment_detected" for k in analyze(cfg, 7))  # m-new not there yet
    got = analyze(cfg, 8)
    assert got[key("deployment_detected", model="m-new")] == 1
    (dep,) = DeploymentStore(cfg).find()
    assert (dep.model, dep.source, dep.replaces) == ("m-new", "detected", None)
    assert dt.datetime.combine(START + dt.timedelta(days=8), dt.time()) <= dep.deployed_at
    # A rerun records no second deployment, and its figures are the first run's.
    assert analyze(cfg, 8).get(key("deployment_detected", model="m-new")) == 1
    assert len(DeploymentStore(cfg).find()) == 1
    labels = {"model": "m-new", "endpoint": "__all__", "baseline": "others"}
    for check in ("latency", "errors", "quality"):
        assert got[key("deploy_check_failed", check=check, **labels)] == 0
        assert 0.5 < got[key("deploy_check_ratio", check=check, **labels)] < 2
    assert got[key("deploy_check_failed", check="__all__", **labels)] == 0
    assert got[key("deployment_rollout_active", model="m-new")] == 1
    assert any("passes against the other models" in n for n in got[("notes", ())])


def test_annotate_deploy_and_list(tmp_path: Path) -> None:
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump({"warehouse": {"url": f"duckdb:///{tmp_path / 'wh.duckdb'}"}}))
    runner = CliRunner()
    args = ["annotate", "deploy", "--config", str(cfg_path), "--model", "m-new", "--replaces", "m-old"]
    out = runner.invoke(app, [*args, "--at", "2026-11-03T09:30+01:00", "--note", "prompt v7", "--endpoint", "chat"])
    assert out.exit_code == 0, out.output
    assert "m-new on /chat at 2026-11-03 08:30 UTC, replacing m-old" in out.output
    listed = runner.invoke(app, ["annotate", "list", "--config", str(cfg_path), "--format", "json"])
    (d,) = json.loads(listed.stdout)["deployments"]
    assert (d["model"], d["endpoint"], d["replaces"], d["note"], d["source"]) == (
        "m-new",
        "chat",
        "m-old",
        "prompt v7",
        "annotation",
    )
    assert d["deployed_at"] == "2026-11-03T08:30:00Z"
    bad = runner.invoke(app, [*args, "--at", "tuesday"])
    assert bad.exit_code == 2 and "bad --at" in bad.output
    assert (
        runner.invoke(
            app, ["annotate", "deploy", "--config", str(cfg_path), "--model", "x", "--replaces", "x"]
        ).exit_code
        == 2
    )


def test_a_regressed_rollout_fails_and_pages_once(tmp_path: Path) -> None:
    rules = yaml.safe_load((ROOT / "configs/monitoring.yaml").read_text())["alerts"]["rules"]
    rule = next(r for r in rules if r["name"] == "DeploymentRegression")
    cfg = setup(
        tmp_path,
        frame(16, new_from=8, slow=1.9, errors=0.05),
        alerts={"rules": [rule], "routes": [{"name": "default", "channels": []}]},
    )
    at = (START + dt.timedelta(days=8)).isoformat()
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude={"source"})))
    out = CliRunner().invoke(
        app, ["annotate", "deploy", "--config", str(cfg_path), "--model", "m-new", "--replaces", "m-old", "--at", at]
    )
    assert out.exit_code == 0, out.output
    store = Store(cfg)
    labels = {"model": "m-new", "endpoint": "__all__", "baseline": "m-old"}
    failed_days = []
    for day in range(8, 16):
        w = daily_window(START + dt.timedelta(days=day))
        res = analyze_deployments(open_window(cfg, w, store))
        recs: list[MetricRecord] = list(res.records)
        got = {(r.metric, r.labels): r.value for r in recs}
        assert not any(k[0] == "deployment_detected" for k in got)  # annotated: not detected again
        if got.get(key("deploy_check_failed", check="__all__", **labels)) == 1:
            failed_days.append(day)
            assert got[key("deploy_check_failed", check="latency", **labels)] == 1
            assert got[key("deploy_check_failed", check="errors", **labels)] == 1
            assert got[key("deploy_check_failed", check="quality", **labels)] == 0
            assert any("Consider rolling back to m-old" in n for n in res.notes)
        assert (key("deployment_rollout_active", model="m-new") in got) == (day - 8 < 14)
        store.replace_window(w, recs, f"run{day}")
        alert_window(cfg, store, w, f"run{day}", send=False, now=dt.datetime(2027, 1, 1))
    assert failed_days == list(range(8, 15))  # check_windows 7, then no more checks
    events = [e for e in AlertStore(cfg).events_between() if e.rule == "DeploymentRegression"]
    fired = {e.labels for e in events if e.status == "firing"}
    assert [json.loads(f)["check"] for f in fired] == ["__all__"]  # the per-check ones folded into it
    assert not [e for e in events if e.status == "resolved"]
