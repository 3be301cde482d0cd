"""The analysis of an experiment from its stored per-window statistics ("looks"),
cumulative from the start: plain functions, no warehouse and no store, so they can
be tested and calibrated (bench/calibrate_ab.py) on statistics made up in memory.

With `sequential: true` the p-value and intervals are always-valid (mSPRT, running
minimum of the p-value and running intersection of the intervals over every look),
so looking every day does not inflate false positives. Then the multiple-testing
correction across the experiment's comparisons, the units each comparison needs for
its MDE, a decision status per comparison and per experiment, and the
sample-ratio-mismatch check of the assignments, cumulative and over the recent
windows (srm_spans in aimon.stats.srm).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from scipy import stats

from aimon.config import ABMetricConfig, ExperimentConfig
from aimon.stats.abtests import (
    ESTIMATES,
    Moments,
    adjust_p_values,
    get_test,
    msprt,
    relative_lift,
    required_total,
)
from aimon.stats.srm import SrmSpan, srm_spans
from aimon.store.abstats import ASSIGNMENTS, OTHER_VARIANT
from aimon.tasks.abtest.results import Comparison, ExperimentResult, Key


def _interval_intersection(
    current: tuple[float, float], running: tuple[float, float] | None
) -> tuple[tuple[float, float], bool]:
    """Running intersection of a confidence sequence; (interval, was it empty)."""
    if running is None:
        return current, False
    lo, hi = max(current[0], running[0]), min(current[1], running[1])
    if lo > hi:  # the effect moved more than sampling noise allows: report today's
        return current, True
    return (lo, hi), False


def compare(
    exp: ExperimentConfig, metric: ABMetricConfig, variant: str, looks: Sequence[Mapping[Key, Moments]]
) -> Comparison:
    """Analyse one comparison over the per-window statistics `looks` (oldest first)."""
    kind = metric.type
    mde = metric.mde or exp.mde
    estimate = ESTIMATES[kind]
    c = t = Moments()
    running_p: float | None = None
    lift_ci: tuple[float, float] | None = None
    diff_ci: tuple[float, float] | None = None
    moved = False
    for look in looks:
        c = c + look.get((exp.control, metric.name), Moments())
        t = t + look.get((variant, metric.name), Moments())
        if not exp.sequential or c.n < 2 or t.n < 2:
            continue
        try:
            ec, et = estimate(c), estimate(t)
            lift, var_lift = relative_lift(ec, et)
        except (ValueError, ZeroDivisionError):
            continue
        if not var_lift > 0:
            continue
        seq = msprt(lift, var_lift, mde * mde, exp.alpha)
        running_p = seq.p_value if running_p is None else min(running_p, seq.p_value)
        lift_ci, empty = _interval_intersection((seq.ci_low, seq.ci_high), lift_ci)
        moved = moved or empty
        var_diff = ec.variance + et.variance
        if var_diff > 0:
            sd = msprt(et.value - ec.value, var_diff, (mde * ec.value) ** 2, exp.alpha)
            diff_ci, _ = _interval_intersection((sd.ci_low, sd.ci_high), diff_ci)

    scale = metric.scale
    base = Comparison(
        variant,
        metric.name,
        kind,
        metric.good,
        "",
        c.n,
        t.n,
        _safe_value(estimate, c, scale),
        _safe_value(estimate, t, scale),
        mde=mde,
    )
    if c.n < 2 or t.n < 2:
        return _replace(base, reason=f"fewer than 2 units in an arm (control {c.n}, {variant} {t.n})")
    try:
        ec, et = estimate(c), estimate(t)
        lift, var_lift = relative_lift(ec, et)
    except (ValueError, ZeroDivisionError) as err:
        return _replace(base, reason=str(err))
    diff = (et.value - ec.value) * scale
    if exp.sequential:
        if running_p is None or lift_ci is None:
            return _replace(base, diff=diff, lift=lift, reason="no variation in the metric yet")
        sized_ci = (diff_ci[0] * scale, diff_ci[1] * scale) if diff_ci else None
        out = _replace(
            base,
            method=f"msprt (relative lift, tau={mde:g}) on {get_test(kind).__name__} estimates",
            diff=diff,
            diff_ci=sized_ci,
            lift=lift,
            lift_ci=lift_ci,
            p_value=running_p,
        )
        if moved:
            out = _replace(out, reason="the interval sequence became empty: the effect is not stable over time")
        return out
    try:
        res = get_test(kind)(c, t, exp.alpha)
    except ValueError as err:
        return _replace(base, diff=diff, lift=lift, reason=str(err))
    z = _z(exp.alpha)
    half = z * math.sqrt(var_lift)
    return _replace(
        base,
        method=res.method,
        diff=res.diff * scale,
        diff_ci=(res.ci_low * scale, res.ci_high * scale),
        lift=lift,
        lift_ci=(lift - half, lift + half),
        p_value=res.p_value,
    )


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2))


def _safe_value(estimate: Any, m: Moments, scale: float) -> float | None:
    if m.n == 0:
        return None
    try:
        return float(estimate(m).value) * scale
    except (ValueError, ZeroDivisionError):
        return None


def _replace(c: Comparison, **changes: Any) -> Comparison:
    return dataclasses.replace(c, **changes)


def _needed(
    exp: ExperimentConfig, comp: Comparison, c: Moments, t: Moments, units_pair: int, n_tests: int
) -> float | None:
    """Experiment units (all arms) this comparison needs for its MDE at exp.power."""
    estimate = ESTIMATES[comp.type]
    try:
        ec, et = estimate(c), estimate(t)
    except (ValueError, ZeroDivisionError):
        return None
    w = exp.weights
    wc, wt = w[exp.control], w[comp.variant]
    alpha = exp.alpha / n_tests if exp.correction == "holm" else exp.alpha
    pair = required_total(
        mean_control=ec.value,
        var_control=ec.variance * c.n,
        var_treatment=et.variance * t.n,
        mde=comp.mde,
        share_control=wc / (wc + wt),
        share_treatment=wt / (wc + wt),
        alpha=alpha,
        power=exp.power,
        sequential_tau2=comp.mde**2 if exp.sequential else None,
    )
    if not math.isfinite(pair):
        return None
    coverage = (c.n + t.n) / units_pair if units_pair else 1.0  # e.g. only rated requests
    return pair / max(coverage, 1e-12) / (wc + wt)


def _srm(exp: ExperimentConfig, looks: Sequence[Mapping[Key, Moments]]) -> tuple[SrmSpan, ...]:
    """The split tested cumulatively and over the recent windows (exp.srm_spans)."""
    per_window = [[look.get((v, ASSIGNMENTS), Moments()).n for v in exp.variants] for look in looks]
    w = exp.weights
    return srm_spans(
        per_window or [[0] * len(exp.variants)], [w[v] for v in exp.variants], exp.srm_threshold, exp.srm_spans
    )


def _srm_mismatch(spans: tuple[SrmSpan, ...]) -> bool:
    """Whether the split is off over any span, the cumulative one included."""
    return any(s.result.mismatch for s in spans)


def _result(
    exp: ExperimentConfig,
    looks: Sequence[Mapping[Key, Moments]],
    spans: tuple[SrmSpan, ...],
    status: str,
    units: dict[str, int],
    other_units: int,
    comparisons: tuple[Comparison, ...],
    needed_units: float | None,
    granularity: str,
) -> ExperimentResult:
    """The experiment's result: what the config says, the looks counted, the cumulative
    split (the first span) and the recent ones (the rest)."""
    return ExperimentResult(
        exp.name,
        status,
        exp.sequential,
        exp.correction,
        exp.alpha,
        len(looks),
        None,
        units,
        other_units,
        spans[0].result,
        comparisons,
        needed_units,
        granularity=granularity,
        srm_recent=spans[1:],
        srm_mismatch=_srm_mismatch(spans),
    )


def analyze_looks(
    exp: ExperimentConfig, looks: Sequence[Mapping[Key, Moments]], granularity: str = "daily"
) -> ExperimentResult:
    """The experiment's result from its per-window statistics, oldest window first."""
    total: dict[Key, Moments] = {}
    for look in looks:
        for k, m in look.items():
            total[k] = total.get(k, Moments()) + m
    units = {v: total.get((v, ASSIGNMENTS), Moments()).n for v in exp.variants}
    other = total.get((OTHER_VARIANT, ASSIGNMENTS), Moments()).n
    weights = exp.weights
    spans = _srm(exp, looks)
    srm_mismatch = _srm_mismatch(spans)

    comps = [compare(exp, m, v, looks) for m in exp.metrics for v in exp.variants if v != exp.control]
    tested = [i for i, c in enumerate(comps) if c.p_value is not None]
    adjusted = adjust_p_values([comps[i].p_value for i in tested], exp.correction)  # type: ignore[misc]
    for i, p in zip(tested, adjusted, strict=True):
        comps[i] = _replace(comps[i], p_adjusted=p)

    final: list[Comparison] = []
    for comp in comps:
        metric = next(m for m in exp.metrics if m.name == comp.metric)
        c = total.get((exp.control, metric.name), Moments())
        t = total.get((comp.variant, metric.name), Moments())
        pair_units = units[exp.control] + units[comp.variant]
        needed = _needed(exp, comp, c, t, pair_units, max(1, len(comps))) if c.n >= 2 and t.n >= 2 else None
        comp = _replace(comp, needed_units=needed)
        if comp.p_adjusted is not None and comp.p_adjusted < exp.alpha and comp.lift is not None:
            # The side of 0 the interval lies on (the estimate's sign if it straddles 0).
            up = comp.lift_ci[0] > 0 if comp.lift_ci and (comp.lift_ci[0] > 0 or comp.lift_ci[1] < 0) else comp.lift > 0
            better = up == (metric.good == "higher")
            status = "improvement" if better else "regression"
        elif (
            comp.p_adjusted is not None
            and needed is not None
            and units[exp.control] + units[comp.variant] >= (needed * (weights[exp.control] + weights[comp.variant]))
        ):
            status = "no_difference"
        else:
            status = "collecting"
        final.append(_replace(comp, status=status))

    statuses = {c.status for c in final}
    if srm_mismatch:
        status = "invalid"
    elif "regression" in statuses:
        status = "regression"
    elif "improvement" in statuses:
        status = "improvement"
    elif "collecting" in statuses or not final:
        status = "collecting"
    else:
        status = "no_difference"
    undecided = [
        c.needed_units for c in final if c.status in ("collecting", "no_difference") and c.needed_units is not None
    ]
    return _result(
        exp, looks, spans, status, units, other, tuple(final), max(undecided) if undecided else None, granularity
    )


def srm_only(
    exp: ExperimentConfig, looks: Sequence[Mapping[Key, Moments]], granularity: str = "daily"
) -> ExperimentResult:
    units = {v: sum(look.get((v, ASSIGNMENTS), Moments()).n for look in looks) for v in exp.variants}
    spans = _srm(exp, looks)
    status = "invalid" if _srm_mismatch(spans) else "collecting"
    return _result(exp, looks, spans, status, units, 0, (), None, granularity)
