"""Planned changes: deployments detected in the data, and the post-deployment check.

Each run (config `deployments:`):

1. Detection: a model with rows in the window and none in the `detect_after_windows`
   windows before (while those windows hold rows at all: the first window of the data
   is not a deployment) is recorded in the deployments table as "detected", unless a
   deployment of it is recorded already (`aimon annotate deploy`).
2. For each deployment whose window is at most `check_windows - 1` windows back, the
   new model's rows of this window are compared with the baseline: the model it
   replaces (`--replaces`), else the other models (of its endpoint, if it has one),
   over the `baseline_windows` windows before the deployment. Three checks, each a
   ratio against its limit and a one-sided test, so a check fails only when the new
   model is past the limit *and* worse beyond what the two samples' n explain:
   - latency: p95 new / p95 baseline <= latency_ratio; Mann-Whitney U (new slower);
   - errors: error rate new / baseline <= error_ratio; pooled two-proportion z test;
   - quality: accuracy new / baseline >= quality_ratio on labelled rows (label,
     prediction); pooled two-proportion z test (new less accurate).
   Fewer than `min_sample` rows a side: the check is not judged (a note says so).
3. `deployment_rollout_active{model}` = 1 for `rollout_windows` windows from the
   deployment's, so spike rules can hold off during a planned rollout (`unless:`).

Figures: deploy_check_ratio / deploy_check_p_value / deploy_check_failed
{model, endpoint, check, baseline}; deploy_check_failed{check=__all__} is 1 when any
check failed (the DeploymentRegression rule pages on it; the per-check series fold
into it); deployment_rollout_active{model}; deployment_detected{model} in the window
a deployment was detected.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from scipy import stats

from aimon.config.deployments import DeploymentsConfig
from aimon.records import ALL, AnalyzerResult, MetricRecord
from aimon.store.deployments import Deployment, DeploymentStore
from aimon.tasks.contract import valid_rows
from aimon.tasks.orchestration.context import AnalysisContext, endpoint_expr, status_class_expr
from aimon.windows import Window, daily_window, window_containing

OTHERS = "others"  # baseline label: the other models (of the endpoint)


def shift(w: Window, n: int) -> Window:
    """The window n windows after `w` (before, for n < 0), in its timezone."""
    if w.granularity == "daily":
        return daily_window(w.local_start.date() + dt.timedelta(days=n), w.timezone)
    return window_containing(w.start + dt.timedelta(hours=n), "hourly", w.timezone)


def windows_since(first: Window, w: Window) -> int:
    if w.granularity == "daily":
        return (w.local_start.date() - first.local_start.date()).days
    return round((w.start - first.start).total_seconds() / 3600)


# -- the checks: plain functions on counts and samples ---------------------------------


@dataclass(frozen=True)
class Check:
    check: str  # latency | errors | quality
    value_new: float
    value_baseline: float
    ratio: float  # new / baseline
    limit: float
    p_value: float  # one-sided: the new model is worse
    n_new: int
    n_baseline: int
    failed: bool
    method: str


def _ratio(new: float, base: float) -> float:
    if base == 0:
        return 1.0 if new == 0 else math.inf
    return new / base


def proportion_p(x_new: int, n_new: int, x_base: int, n_base: int, alternative: str) -> float:
    """Pooled two-proportion z test, one-sided: "larger" (the new rate is higher) or
    "smaller"; as statsmodels' proportions_ztest([x_new, x_base], [n_new, n_base])."""
    pooled = (x_new + x_base) / (n_new + n_base)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_new + 1 / n_base))
    if se == 0:
        return 1.0
    z = (x_new / n_new - x_base / n_base) / se
    return float(stats.norm.sf(z) if alternative == "larger" else stats.norm.cdf(z))


def error_check(errors_new: int, n_new: int, errors_base: int, n_base: int, limit: float, alpha: float) -> Check:
    rn, rb = errors_new / n_new, errors_base / n_base
    ratio, p = _ratio(rn, rb), proportion_p(errors_new, n_new, errors_base, n_base, "larger")
    return Check("errors", rn, rb, ratio, limit, p, n_new, n_base, ratio > limit and p < alpha, "two_proportion_z")


def quality_check(correct_new: int, n_new: int, correct_base: int, n_base: int, limit: float, alpha: float) -> Check:
    an, ab = correct_new / n_new, correct_base / n_base
    ratio, p = _ratio(an, ab), proportion_p(correct_new, n_new, correct_base, n_base, "smaller")
    return Check("quality", an, ab, ratio, limit, p, n_new, n_base, ratio < limit and p < alpha, "two_proportion_z")


def latency_check(
    new: np.ndarray, base: np.ndarray, limit: float, alpha: float, cap: int = 20000, seed: int = 0
) -> Check:
    """p95s from every row (numpy's linear quantile, as the operational figures); the
    one-sided Mann-Whitney U (new slower) on at most `cap` rows a side (seeded)."""
    pn, pb = float(np.quantile(new, 0.95)), float(np.quantile(base, 0.95))
    rng = np.random.default_rng(seed)
    a = new if len(new) <= cap else rng.choice(new, cap, replace=False)
    b = base if len(base) <= cap else rng.choice(base, cap, replace=False)
    p = float(stats.mannwhitneyu(a, b, alternative="greater").pvalue)
    ratio = _ratio(pn, pb)
    return Check("latency", pn, pb, ratio, limit, p, len(new), len(base), ratio > limit and p < alpha, "mann_whitney_u")


# -- reads -----------------------------------------------------------------------------


def _side(ctx: AnalysisContext, model_cond: sa.ColumnElement[bool], start: dt.datetime, end: dt.datetime) -> dict:
    """Counts (rows, errors, labelled, correct) and latencies of the rows in [start, end)."""
    ix = ctx.interactions
    where = sa.and_(ix.in_window(), valid_rows(ix), model_cond)
    params = {"window_start": start, "window_end": end}
    cols: list[Any] = [
        sa.func.count().label("n"),
        sa.func.sum(sa.case((status_class_expr(ix) != "ok", 1), else_=0)).label("errors"),
    ]
    label, pred = ix.col("label"), ix.col("prediction")
    if label is not None and pred is not None:
        both = sa.and_(label.is_not(None), pred.is_not(None))
        same = sa.and_(both, sa.cast(label, sa.String) == sa.cast(pred, sa.String))
        cols += [
            sa.func.sum(sa.case((both, 1), else_=0)).label("labelled"),
            sa.func.sum(sa.case((same, 1), else_=0)).label("correct"),
        ]
    row = ctx.warehouse.fetch(sa.select(*cols).select_from(ix.table).where(where), params)[0]
    out = {k: int(row.get(k) or 0) for k in ("n", "errors", "labelled", "correct")}
    lat = ix.col("latency_seconds")
    latencies = np.array([], dtype="float64")
    if lat is not None and out["n"]:
        stmt = sa.select(lat.label("latency")).select_from(ix.table).where(where, lat.is_not(None))
        latencies = ctx.warehouse.fetch_arrow(stmt, params).column("latency").to_numpy().astype("float64")
    out["latency"] = latencies  # type: ignore[assignment]
    return out


def run_checks(ctx: AnalysisContext, dep: Deployment, dep_window: Window) -> tuple[list[Check], list[str]]:
    dc: DeploymentsConfig = ctx.cfg.deployments
    ix, w = ctx.interactions, ctx.window
    model = sa.cast(ix.req("model"), sa.String)
    scope: sa.ColumnElement[bool] = sa.true() if dep.endpoint is None else endpoint_expr(ix) == dep.endpoint
    new_cond = sa.and_(model == dep.model, scope)
    base_cond = sa.and_(model == dep.replaces if dep.replaces else model != dep.model, scope)
    new = _side(ctx, new_cond, max(w.start, dep.deployed_at), w.end)
    base_start = shift(dep_window, -dc.baseline_windows).start
    base = _side(ctx, base_cond, base_start, max(base_start, dep.deployed_at))
    checks: list[Check] = []
    notes: list[str] = []
    who = f"deployment of {dep.model}"

    def enough(what: str, n_new: int, n_base: int) -> bool:
        if n_new >= dc.min_sample and n_base >= dc.min_sample:
            return True
        notes.append(
            f"{who}: {what} not judged: {n_new:,} rows of the new model and {n_base:,} of the baseline "
            f"(deployments.min_sample {dc.min_sample})"
        )
        return False

    lat_new, lat_base = new["latency"], base["latency"]
    if len(lat_new) and len(lat_base) and enough("latency", len(lat_new), len(lat_base)):
        checks.append(latency_check(lat_new, lat_base, dc.latency_ratio, dc.alpha, dc.sample_cap, dc.seed))
    if enough("error rate", new["n"], base["n"]):
        checks.append(error_check(new["errors"], new["n"], base["errors"], base["n"], dc.error_ratio, dc.alpha))
    ln, lb = new["labelled"], base["labelled"]
    if (ln or lb) and enough("quality", ln, lb):
        checks.append(quality_check(new["correct"], ln, base["correct"], lb, dc.quality_ratio, dc.alpha))
    return checks, notes


# -- detection ---------------------------------------------------------------------------


def _models(ctx: AnalysisContext, start: dt.datetime, end: dt.datetime) -> dict[str, dt.datetime]:
    """Model -> its first timestamp in [start, end)."""
    ix = ctx.interactions
    model = sa.cast(ix.req("model"), sa.String)
    q = (
        sa.select(model.label("model"), sa.func.min(ix.req("timestamp")).label("first"))
        .select_from(ix.table)
        .where(ix.in_window(), valid_rows(ix))
        .group_by(model)
    )
    rows = ctx.warehouse.fetch(q, {"window_start": start, "window_end": end})
    out = {}
    for r in rows:
        first = r["first"]
        out[str(r["model"])] = first if isinstance(first, dt.datetime) else dt.datetime.fromisoformat(str(first))
    return out


def detect_deployments(ctx: AnalysisContext, store: DeploymentStore) -> tuple[list[Deployment], list[str]]:
    dc, w = ctx.cfg.deployments, ctx.window
    current = _models(ctx, w.start, w.end)
    if not current:
        return [], []
    before = shift(w, -dc.detect_after_windows).start
    previous = _models(ctx, before, w.start)
    if not previous:
        return [], [f"deployments: no rows in the {dc.detect_after_windows} windows before; new models not detected"]
    known = {d.model for d in store.find(since=before, until=w.end)}
    found = []
    for m in sorted(set(current) - set(previous) - known):
        first = current[m].replace(tzinfo=None) if current[m].tzinfo else current[m]
        found.append(
            store.add(
                m,
                first,
                source="detected",
                note=f"first rows in {w.label}, none in the {dc.detect_after_windows} windows before",
            )
        )
    notes = [f"deployments: new model {d.model} detected (first row {d.deployed_at:%Y-%m-%d %H:%M} UTC)" for d in found]
    return found, notes


# -- the analyzer --------------------------------------------------------------------------


def _current(deps: list[Deployment]) -> list[Deployment]:
    """The deployment per (model, endpoint) in force: an annotation before a detection
    of the same model, else the latest."""
    best: dict[tuple[str, str | None], Deployment] = {}
    for d in deps:
        k = (d.model, d.endpoint)
        old = best.get(k)
        rank = (d.source == "annotation", d.deployed_at)
        if old is None or rank >= (old.source == "annotation", old.deployed_at):
            best[k] = d
    return sorted(best.values(), key=lambda d: (d.deployed_at, d.model))


def analyze_deployments(ctx: AnalysisContext) -> AnalyzerResult:
    dc, w = ctx.cfg.deployments, ctx.window
    if not dc.enabled:
        return AnalyzerResult("deploy", ())
    store = DeploymentStore(ctx.cfg)
    store.ensure()
    records: list[MetricRecord] = []
    notes: list[str] = []
    if dc.detect:
        found, more = detect_deployments(ctx, store)
        notes += more
        # Also on a rerun of the window that found it (it is recorded by then, not found again).
        seen = {d.model for d in found} | {
            d.model for d in store.find(since=w.start, until=w.end) if d.source == "detected"
        }
        records += [MetricRecord.of("deployment_detected", 1, model=m) for m in sorted(seen)]
    horizon = max(dc.check_windows, dc.rollout_windows)
    deps = _current(store.find(since=shift(w, -(horizon - 1)).start, until=w.end))
    active: set[str] = set()
    for dep in deps:
        dep_window = window_containing(dep.deployed_at, w.granularity, w.timezone)
        k = windows_since(dep_window, w)
        if k < dc.rollout_windows:
            active.add(dep.model)
        if k >= dc.check_windows:
            continue
        checks, more = run_checks(ctx, dep, dep_window)
        notes += more
        labels = {"model": dep.model, "endpoint": dep.endpoint or ALL, "baseline": dep.replaces or OTHERS}
        for c in checks:
            records += [
                MetricRecord.of("deploy_check_failed", float(c.failed), check=c.check, **labels),
                MetricRecord.of("deploy_check_p_value", c.p_value, check=c.check, **labels),
            ]
            if math.isfinite(c.ratio):
                records.append(MetricRecord.of("deploy_check_ratio", c.ratio, check=c.check, **labels))
        if checks:
            failed = [c for c in checks if c.failed]
            records.append(MetricRecord.of("deploy_check_failed", float(bool(failed)), check=ALL, **labels))
            against = f"{dep.replaces}" if dep.replaces else "the other models"
            if failed:
                notes.append(
                    f"deployment of {dep.model} (window {k + 1} of {dc.check_windows}) fails against {against}: "
                    + "; ".join(_describe(c) for c in failed)
                    + (f". Consider rolling back to {dep.replaces}" if dep.replaces else ". Consider rolling it back")
                )
            else:
                notes.append(
                    f"deployment of {dep.model} (window {k + 1} of {dc.check_windows}) passes against {against}: "
                    + "; ".join(_describe(c) for c in checks)
                )
    records += [MetricRecord.of("deployment_rollout_active", 1, model=m) for m in sorted(active)]
    return AnalyzerResult("deploy", tuple(records), tuple(notes))


def _describe(c: Check) -> str:
    side = ">=" if c.check == "quality" else "<="
    return (
        f"{c.check} {c.ratio:.2f}x (limit {side} {c.limit:g}x, one-sided p = {c.p_value:.2g}, "
        f"n {c.n_new:,} new / {c.n_baseline:,} baseline)"
    )
