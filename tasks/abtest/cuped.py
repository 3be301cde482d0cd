"""CUPED for an experiment's continuous interactions metrics (aimon.stats.cuped).

The request-level analysis (looks.py) adds up per-window sums; CUPED compares
*units* (the randomisation unit: `unit_id`, or `user_id`), each with its mean of the
metric since the experiment's first window (y) and its mean of the same metric over
`cuped.lookback_days` before it (x, any of its rows, in an experiment or not). One
query per run does it in the warehouse: the per-unit means of every metric in two
GROUP BYs (the experiment's rows, the pre-period's), joined on the unit, summed per
variant into ArmMoments. Units with no pre-period value of a metric, and units seen in
more than one variant, are counted and left out.

Sequential like the rest (`sequential: true`): the adjusted lift's always-valid mSPRT
p-value and interval at this look (tau = the metric's MDE). The running minimum over
earlier looks that looks.py takes would only lower the p-value: this look's alone is
conservative, and needs no per-unit history of earlier looks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from aimon.config import ExperimentConfig
from aimon.records import MetricRecord
from aimon.stats.abtests import msprt
from aimon.stats.cuped import ArmMoments, CupedResult, cuped_from_moments
from aimon.tasks.abtest.reads import MetricSql, interaction_column
from aimon.tasks.contract import valid_rows
from aimon.tasks.orchestration.context import AnalysisContext


@dataclass(frozen=True)
class CupedComparison:
    variant: str
    metric: str
    units_control: int  # units with pre-period data, in the comparison
    units_variant: int
    no_pre_period: int  # units of the two arms left out: no pre-period value of the metric
    result: CupedResult | None = None
    method: str = ""
    lift_ci: tuple[float, float] | None = None  # always-valid when sequential
    p_value: float | None = None
    reason: str | None = None  # why there is no result


@dataclass(frozen=True)
class CupedOutcome:
    unit: str | None
    pre_start: dt.datetime | None
    comparisons: tuple[CupedComparison, ...] = ()
    several_variants: int = 0  # units seen in more than one variant, left out
    no_pre_period: tuple[tuple[str, int], ...] = ()  # per metric: units of all variants without pre-period data
    note: str | None = None  # why CUPED did not run at all


def unit_column(ctx: AnalysisContext, exp: ExperimentConfig) -> str | None:
    """The configured unit, or unit_id / user_id where the table has it."""
    if exp.cuped.unit is not None:
        return exp.cuped.unit if interaction_column(ctx, exp.cuped.unit) is not None else None
    ix = ctx.interactions
    return next((c for c in ("unit_id", "user_id") if ix.has(c)), None)


def _query(
    ctx: AnalysisContext, exp: ExperimentConfig, unit: str, plans: Sequence[MetricSql], variants: Sequence[str]
) -> sa.Select[Any]:
    ix = ctx.interactions
    u = sa.cast(interaction_column(ctx, unit), sa.String)
    ts = ix.req("timestamp")
    var = sa.cast(ix.req("variant"), sa.String)
    start = sa.bindparam("cuped_start", type_=sa.DateTime)
    exp_rows = sa.and_(
        ts >= start,
        ts < sa.bindparam("cuped_end", type_=sa.DateTime),
        valid_rows(ix),
        sa.cast(ix.req("experiment"), sa.String) == sa.bindparam("ab_experiment", exp.name),
        var.in_(list(variants)),
        u.is_not(None),
    )
    during = (
        sa.select(
            u.label("u"),
            sa.func.min(var).label("v"),
            sa.func.max(var).label("v_max"),
            *[sa.func.avg(p.x).label(f"y{i}") for i, p in enumerate(plans)],
        )
        .where(exp_rows)
        .group_by(u)
        .subquery("cuped_during")
    )
    pre_rows = sa.and_(ts >= sa.bindparam("cuped_pre_start", type_=sa.DateTime), ts < start, valid_rows(ix))
    before = (
        sa.select(u.label("u"), *[sa.func.avg(p.x).label(f"x{i}") for i, p in enumerate(plans)])
        .where(pre_rows, u.is_not(None))
        .group_by(u)
        .subquery("cuped_before")
    )
    one = during.c.v == during.c.v_max
    cols: list[Any] = [
        during.c.v.label("v"),
        sa.func.sum(sa.case((one, 0), else_=1)).label("several"),
    ]
    for i in range(len(plans)):
        y, x = during.c[f"y{i}"], before.c[f"x{i}"]
        both = sa.and_(one, y.is_not(None), x.is_not(None))
        cols += [
            sa.func.sum(sa.case((sa.and_(one, y.is_not(None)), 1), else_=0)).label(f"m{i}_with_y"),
            sa.func.sum(sa.case((both, 1), else_=0)).label(f"m{i}_n"),
            sa.func.sum(sa.case((both, y))).label(f"m{i}_sy"),
            sa.func.sum(sa.case((both, x))).label(f"m{i}_sx"),
            sa.func.sum(sa.case((both, y * y))).label(f"m{i}_syy"),
            sa.func.sum(sa.case((both, x * x))).label(f"m{i}_sxx"),
            sa.func.sum(sa.case((both, x * y))).label(f"m{i}_sxy"),
        ]
    joined = sa.outerjoin(during, before, during.c.u == before.c.u)
    return sa.select(*cols).select_from(joined).group_by(during.c.v)


def _num(r: Mapping[str, Any], key: str) -> float:
    v = r.get(key)
    return 0.0 if v is None else float(v)


def _compare(
    exp: ExperimentConfig, plan: MetricSql, i: int, variant: str, rows: Mapping[str, Mapping[str, Any]]
) -> CupedComparison:
    name = plan.metric.name
    rc, rt = rows.get(exp.control, {}), rows.get(variant, {})
    arms = [
        ArmMoments(int(_num(r, f"m{i}_n")), *(_num(r, f"m{i}_{k}") for k in ("sy", "sx", "syy", "sxx", "sxy")))
        for r in (rc, rt)
    ]
    no_pre = int(sum(_num(r, f"m{i}_with_y") - _num(r, f"m{i}_n") for r in (rc, rt)))
    base = CupedComparison(variant, name, arms[0].n, arms[1].n, no_pre)
    least = exp.cuped.min_units
    if min(arms[0].n, arms[1].n) < least:
        return dataclasses.replace(
            base,
            reason=f"fewer than {least} units with pre-period data in an arm "
            f"({exp.control} {arms[0].n}, {variant} {arms[1].n})",
        )
    try:
        res = cuped_from_moments(arms[0], arms[1], exp.alpha)
    except (ValueError, ZeroDivisionError) as err:
        return dataclasses.replace(base, reason=str(err))
    if not exp.sequential:
        return dataclasses.replace(
            base,
            result=res,
            method="cuped welch t (per unit)",
            lift_ci=(res.lift_ci_low, res.lift_ci_high),
            p_value=res.test.p_value,
        )
    mde = plan.metric.mde or exp.mde
    var_lift = res.lift_variance
    if not var_lift > 0:
        return dataclasses.replace(base, result=res, reason="no variation in the metric after the adjustment")
    seq = msprt(res.lift, var_lift, mde * mde, exp.alpha)
    return dataclasses.replace(
        base,
        result=res,
        method=f"msprt (relative lift, tau={mde:g}) on cuped per-unit estimates",
        lift_ci=(seq.ci_low, seq.ci_high),
        p_value=seq.p_value,
    )


def run_cuped(
    ctx: AnalysisContext, exp: ExperimentConfig, plans: Sequence[MetricSql], first: dt.datetime, end: dt.datetime
) -> CupedOutcome:
    """CUPED for the experiment's continuous interactions metrics, from its first
    window's start `first` to `end` (this window's end)."""
    if not exp.cuped.enabled:
        return CupedOutcome(None, None)
    used = [p for p in plans if p.metric.type == "continuous" and p.metric.source == "interactions"]
    if not used:
        return CupedOutcome(None, None)
    unit = unit_column(ctx, exp)
    if unit is None:
        wanted = repr(exp.cuped.unit) if exp.cuped.unit else "unit_id or user_id"
        return CupedOutcome(
            None, None, note=f"CUPED skipped: the table has no {wanted} column (experiments.cuped.unit)"
        )
    pre_start = first - dt.timedelta(days=exp.cuped.lookback_days)
    params = {"cuped_start": first, "cuped_end": end, "cuped_pre_start": pre_start}
    found = {str(r["v"]): r for r in ctx.warehouse.fetch(_query(ctx, exp, unit, used, exp.variants), params) if r["v"]}
    several = int(sum(_num(r, "several") for r in found.values()))
    no_pre = tuple(
        (p.metric.name, int(sum(_num(r, f"m{i}_with_y") - _num(r, f"m{i}_n") for r in found.values())))
        for i, p in enumerate(used)
    )
    comps = [_compare(exp, p, i, v, found) for i, p in enumerate(used) for v in exp.variants if v != exp.control]
    return CupedOutcome(unit, pre_start, tuple(comps), several, no_pre)


def cuped_records(exp: ExperimentConfig, out: CupedOutcome) -> list[MetricRecord]:
    e = exp.name
    recs: list[MetricRecord] = []
    if out.unit is None:
        return recs
    if out.several_variants:
        recs.append(
            MetricRecord.of("ab_cuped_excluded_units", out.several_variants, experiment=e, reason="several_variants")
        )
    control_done: set[str] = set()
    for c in out.comparisons:
        if c.metric not in control_done:
            control_done.add(c.metric)
            lab_c = (("experiment", e), ("metric", c.metric), ("variant", exp.control))
            recs.append(MetricRecord("ab_cuped_units", lab_c, float(c.units_control)))
        lab = (("experiment", e), ("metric", c.metric), ("variant", c.variant))
        recs.append(MetricRecord("ab_cuped_units", lab, float(c.units_variant)))
        if c.result is None:
            continue
        pairs = [
            ("ab_cuped_lift", c.result.lift),
            ("ab_cuped_lift_ci_low", c.lift_ci[0] if c.lift_ci else None),
            ("ab_cuped_lift_ci_high", c.lift_ci[1] if c.lift_ci else None),
            ("ab_cuped_p_value", c.p_value),
            ("ab_cuped_variance_reduction", c.result.variance_reduction),
        ]
        recs += [MetricRecord(n, lab, float(v)) for n, v in pairs if v is not None and math.isfinite(v)]
    for metric, n in out.no_pre_period:
        if n:
            lab_x = (("experiment", e), ("metric", metric), ("reason", "no_pre_period"))
            recs.append(MetricRecord("ab_cuped_excluded_units", lab_x, float(n)))
    return recs


def cuped_notes(exp: ExperimentConfig, out: CupedOutcome) -> list[str]:
    e = exp.name
    if out.note:
        return [f"experiment {e}: {out.note}"]
    notes = []
    for c in out.comparisons:
        head = f"experiment {e}: CUPED {c.metric} ({c.variant}, per {out.unit})"
        if c.result is None:
            notes.append(f"{head}: not computed: {c.reason}")
            continue
        lo, hi = c.lift_ci or (math.nan, math.nan)
        notes.append(
            f"{head}: lift {c.result.lift:+.1%} [{lo:+.1%}, {hi:+.1%}], p = {c.p_value:.3g}, "
            f"variance reduced {c.result.variance_reduction:.0%} (rho {c.result.rho:.2f}; "
            f"{c.units_control + c.units_variant:,} units"
            + (f", {c.no_pre_period:,} without pre-period data left out" if c.no_pre_period else "")
            + ")"
        )
    if out.several_variants:
        notes.append(f"experiment {e}: CUPED left out {out.several_variants:,} units seen in more than one variant")
    return notes


def cuped_details(out: CupedOutcome) -> dict[str, Any]:
    return {
        "unit": out.unit,
        "pre_start": out.pre_start.isoformat() if out.pre_start else None,
        "several_variants": out.several_variants,
        "note": out.note,
        "comparisons": [
            {
                "variant": c.variant,
                "metric": c.metric,
                "units_control": c.units_control,
                "units_variant": c.units_variant,
                "no_pre_period": c.no_pre_period,
                "method": c.method,
                "lift": c.result.lift if c.result else None,
                "lift_ci": list(c.lift_ci) if c.lift_ci else None,
                "p_value": c.p_value,
                "variance_reduction": c.result.variance_reduction if c.result else None,
                "rho": c.result.rho if c.result else None,
                "theta": c.result.theta if c.result else None,
                "reason": c.reason,
            }
            for c in out.comparisons
        ],
    }
