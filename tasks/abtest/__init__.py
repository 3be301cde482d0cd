"""A/B experiments, analysed cumulatively from their start and safe to look at daily.

Each run computes the window's sufficient statistics per experiment, variant and
metric in the warehouse (one GROUP BY; feedback joined on request_id), stores them in
the A/B statistics table (tasks/abstore.py), fills in any earlier window of the
experiment that is not stored yet, and analyses the cumulative statistics:

- per variant and metric: mean, absolute difference and relative lift against the
  control with intervals, a p-value (tasks/abstats.py); with `sequential: true` (the
  default) the p-value and intervals are always-valid (mSPRT, running minimum of the
  p-value and running intersection of the intervals over every window since the
  start), so looking every day does not inflate false positives;
- Holm or Benjamini-Hochberg across the experiment's metrics x variants;
- a sample-ratio-mismatch check of the assignments against the expected split;
- a decision status per comparison and per experiment.

The unit of analysis is the request (the row): per-window sums add up only for units
that live in one window. Experiments randomised per user get intervals that are too
narrow when users send many correlated requests (see README, A/B experiments).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from aimon.config import AB_DERIVED_COLUMNS, CONTRACT_COLUMNS, ABMetricConfig, ExperimentConfig
from aimon.errors import ContractError
from aimon.records import AnalyzerResult, MetricRecord
from aimon.stats.abtests import (
    ESTIMATES,
    Moments,
    SrmResult,
    adjust_p_values,
    get_test,
    msprt,
    relative_lift,
    required_total,
    srm_test,
)
from aimon.store.abstats import ASSIGNMENTS, OTHER_VARIANT, ABStatsStore, StatRow
from aimon.tasks.contract import valid_rows
from aimon.tasks.orchestration.context import AnalysisContext, status_class_expr
from aimon.warehouse import window_params
from aimon.windows import Window, window_containing, windows_between

# ab_status / ab_metric_status values (README, A/B experiments).
STATUS_CODES = {"collecting": 0, "improvement": 1, "regression": 2, "no_difference": 3, "invalid": 4}
STATUS_TEXT = {
    "collecting": "collecting data",
    "improvement": "significant improvement",
    "regression": "significant regression",
    "no_difference": "no significant difference",
    "invalid": "invalid (sample ratio mismatch)",
}

Key = tuple[str, str]  # (variant, metric)


# -- the analysis: plain functions on stored statistics ------------------------------


@dataclass(frozen=True)
class Comparison:
    """One variant against the control on one metric, cumulative to the last look."""

    variant: str
    metric: str
    type: str
    good: str
    method: str  # e.g. "msprt on welch_t estimates" or "welch_t"
    n_control: int
    n_variant: int
    mean_control: float | None
    mean_variant: float | None
    diff: float | None = None  # variant - control, in the metric's unit (x scale)
    diff_ci: tuple[float, float] | None = None
    lift: float | None = None  # variant / control - 1
    lift_ci: tuple[float, float] | None = None
    p_value: float | None = None  # always-valid (sequential) or fixed-horizon
    p_adjusted: float | None = None
    needed_units: float | None = None  # experiment units for the MDE at the configured power
    mde: float = 0.0
    status: str = "collecting"
    reason: str | None = None  # why there is no test yet


@dataclass(frozen=True)
class ExperimentResult:
    name: str
    status: str
    sequential: bool
    correction: str
    alpha: float
    looks: int  # windows analysed since the start
    first_window: dt.datetime | None
    units: dict[str, int]  # cumulative units (requests) per configured variant
    other_units: int  # rows of the experiment with an unconfigured variant value
    srm: SrmResult | None
    comparisons: tuple[Comparison, ...]
    needed_units: float | None  # units (all arms) the slowest non-significant comparison needs
    notes: tuple[str, ...] = field(default=())

    @property
    def total_units(self) -> int:
        return sum(self.units.values())


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
    from scipy import stats

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


def analyze_looks(exp: ExperimentConfig, looks: Sequence[Mapping[Key, Moments]]) -> ExperimentResult:
    """The experiment's result from its per-window statistics, oldest window first."""
    total: dict[Key, Moments] = {}
    for look in looks:
        for k, m in look.items():
            total[k] = total.get(k, Moments()) + m
    units = {v: total.get((v, ASSIGNMENTS), Moments()).n for v in exp.variants}
    other = total.get((OTHER_VARIANT, ASSIGNMENTS), Moments()).n
    weights = exp.weights
    srm = srm_test([units[v] for v in exp.variants], [weights[v] for v in exp.variants], exp.srm_threshold)

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
    if srm.mismatch:
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
    return ExperimentResult(
        exp.name,
        status,
        exp.sequential,
        exp.correction,
        exp.alpha,
        len(looks),
        None,
        units,
        other,
        srm,
        tuple(final),
        max(undecided) if undecided else None,
    )


def _rec(name: str, value: float, labels: Mapping[str, str]) -> MetricRecord:
    # Not MetricRecord.of: its first parameter is called `metric`, like our label.
    return MetricRecord(name, tuple(sorted((k, str(v)) for k, v in labels.items())), float(value))


def experiment_records(res: ExperimentResult, control: str) -> list[MetricRecord]:
    e = res.name
    recs = [
        MetricRecord.of("ab_status", STATUS_CODES[res.status], experiment=e),
        *[MetricRecord.of("ab_units", n, experiment=e, variant=v) for v, n in res.units.items()],
    ]
    if res.srm is not None and res.total_units:
        recs.append(MetricRecord.of("ab_srm_p_value", res.srm.p_value, experiment=e))
        recs.append(MetricRecord.of("ab_srm_detected", 1.0 if res.srm.mismatch else 0.0, experiment=e))
    if res.needed_units is not None:
        recs.append(MetricRecord.of("ab_sample_size", math.ceil(res.needed_units), experiment=e))
    means: dict[tuple[str, str], float] = {}
    for c in res.comparisons:
        if c.mean_control is not None:
            means[(control, c.metric)] = c.mean_control
        if c.mean_variant is not None:
            means[(c.variant, c.metric)] = c.mean_variant
    for (v, m), value in means.items():
        recs.append(_rec("ab_metric_mean", value, {"experiment": e, "variant": v, "metric": m}))
    for c in res.comparisons:
        lab = {"experiment": e, "variant": c.variant, "metric": c.metric}
        recs.append(_rec("ab_metric_status", STATUS_CODES["invalid" if res.status == "invalid" else c.status], lab))
        # 0/1, so an alert rule can fire on a guardrail that broke (rules compare values).
        regressed = c.status == "regression" and res.status != "invalid"
        recs.append(_rec("ab_regression_detected", 1.0 if regressed else 0.0, lab))
        pairs: list[tuple[str, float | None]] = [
            ("ab_lift", c.lift),
            ("ab_lift_ci_low", c.lift_ci[0] if c.lift_ci else None),
            ("ab_lift_ci_high", c.lift_ci[1] if c.lift_ci else None),
            ("ab_diff", c.diff),
            ("ab_diff_ci_low", c.diff_ci[0] if c.diff_ci else None),
            ("ab_diff_ci_high", c.diff_ci[1] if c.diff_ci else None),
            ("ab_p_value", c.p_value),
            ("ab_p_value_adjusted", c.p_adjusted),
        ]
        for name, figure in pairs:
            if figure is not None and math.isfinite(figure):
                recs.append(_rec(name, figure, lab))
    return recs


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1%}"


def experiment_notes(res: ExperimentResult, window: Window, last_window_units: int) -> list[str]:
    mode = "sequential" if res.sequential else "fixed-horizon"
    head = (
        f"experiment {res.name}: {STATUS_TEXT[res.status]} after {res.looks} {window.granularity} windows, "
        f"{res.total_units:,} requests ({mode}, {res.correction} correction)"
    )
    decided = [c for c in res.comparisons if c.status in ("improvement", "regression")]
    if decided and res.status != "invalid":
        head += ": " + ", ".join(
            f"{'better' if c.status == 'improvement' else 'worse'} {c.metric} ({c.variant}) {_pct(c.lift)}"
            for c in decided
        )
    notes = [head]
    if res.srm is not None and res.srm.mismatch:
        split = ", ".join(f"{v} {n:,}" for v, n in res.units.items())
        notes.append(
            f"experiment {res.name}: sample ratio mismatch, p = {res.srm.p_value:.2g} < {res.srm.threshold:g} "
            f"(observed {split}; expected {', '.join(f'{x:,.0f}' for x in res.srm.expected)}): "
            "the assignment is broken; results are not trustworthy"
        )
    if res.status == "collecting" and res.needed_units is not None:
        more = max(0.0, res.needed_units - res.total_units)
        eta = f", about {math.ceil(more / last_window_units)} more windows" if last_window_units and more else ""
        notes.append(
            f"experiment {res.name}: needs ~{math.ceil(res.needed_units):,} requests in total to detect the "
            f"configured MDE at the configured power ({math.ceil(more):,} more{eta})"
        )
    for c in res.comparisons:
        if c.reason and c.p_value is not None:  # tested, with a caveat
            notes.append(f"experiment {res.name}: {c.metric} ({c.variant}): {c.reason}")
    if res.other_units:
        notes.append(
            f"experiment {res.name}: {res.other_units:,} requests carry a variant value not in the config "
            "(left out of the analysis)"
        )
    notes.extend(res.notes)
    return notes


def result_details(res: ExperimentResult) -> dict[str, Any]:
    d = asdict(res)
    d["status_text"] = STATUS_TEXT[res.status]
    d["srm"] = asdict(res.srm) if res.srm else None
    return d


# -- the warehouse side ---------------------------------------------------------------


@dataclass(frozen=True)
class _MetricSql:
    metric: ABMetricConfig
    x: sa.ColumnElement[Any]
    y: sa.ColumnElement[Any] | None = None


def _interaction_column(ctx: AnalysisContext, name: str) -> sa.ColumnElement[Any] | None:
    ix = ctx.interactions
    if name == "error":
        return sa.case((status_class_expr(ix) != "ok", 1), else_=0)
    if name in CONTRACT_COLUMNS:
        return ix.col(name)
    if name in ix.all_columns:
        # A non-contract column of the table: quoted and qualified by the dialect.
        prep = ctx.warehouse.engine.dialect.identifier_preparer
        return sa.literal_column(f"{prep.format_table(ix.table)}.{prep.quote(name)}")
    return None


def _plan(
    ctx: AnalysisContext, exp: ExperimentConfig
) -> tuple[sa.FromClause, list[_MetricSql], list[str], list[ABMetricConfig]]:
    """The FROM clause (interactions, left-joined to feedback when a metric needs it),
    the SQL value of each usable metric, and notes for the skipped ones."""
    ix = ctx.interactions
    notes: list[str] = []
    skipped: list[ABMetricConfig] = []
    fb_metrics = [m for m in exp.metrics if m.source == "feedback"]
    from_: sa.FromClause = ix.table
    fb: sa.Subquery | None = None
    fb_table = ctx.cfg.warehouse.feedback_table
    if fb_metrics:
        reason = None
        fb_cols: tuple[str, ...] = ()
        if fb_table is None:
            reason = "warehouse.feedback_table is not set"
        elif not ix.has("request_id"):
            reason = "the interactions table has no request_id to join feedback on"
        else:
            try:
                fb_cols = ctx.warehouse.table_columns(fb_table)
            except ContractError as err:
                reason = str(err)
        if reason is None and "request_id" not in fb_cols:
            reason = f"feedback table {fb_table!r} has no request_id column"
        usable = []
        for m in fb_metrics:
            if reason is not None or m.column not in fb_cols:
                skipped.append(m)
                notes.append(
                    f"experiment {exp.name}: metric {m.name} skipped: "
                    + (reason or f"feedback table {fb_table!r} has no column {m.column!r}")
                )
            else:
                usable.append(m)
        if usable and fb_table is not None:
            schema, _, name = fb_table.rpartition(".")
            cols = {m.column for m in usable if m.column}
            extra = ["timestamp"] if "timestamp" in fb_cols else []
            ft = sa.table(
                name, sa.column("request_id"), *[sa.column(c) for c in sorted(cols) + extra], schema=schema or None
            )
            aggs = []
            for c in sorted(cols):
                kinds = {m.type for m in usable if m.column == c}
                # Several feedback rows for one request: the mean rating, and "any" for a flag.
                if "binary" in kinds:
                    aggs.append(sa.func.max(sa.cast(ft.c[c], sa.Integer)).label(f"b_{c}"))
                if "continuous" in kinds:
                    aggs.append(sa.func.avg(sa.cast(ft.c[c], sa.Double)).label(f"c_{c}"))
            fb_q = sa.select(ft.c.request_id, *aggs).group_by(ft.c.request_id)
            if extra:
                # Feedback never precedes its request: read only what can belong to
                # this window, not the feedback table's whole history.
                fb_q = fb_q.where(ft.c.timestamp >= sa.bindparam("window_start", type_=sa.DateTime))
            fb = fb_q.subquery("ab_fb")
            # An inner join, in a query of its own (window_stats): the feedback metrics
            # only count rated requests, and the interaction metrics stay a plain scan.
            from_ = sa.join(ix.table, fb, fb.c.request_id == ix.req("request_id"))

    plans: list[_MetricSql] = []
    for m in exp.metrics:
        if m in skipped:
            continue
        if m.source == "feedback":
            assert fb is not None and m.column is not None
            prefix = "b" if m.type == "binary" else "c"
            plans.append(_MetricSql(m, fb.c[f"{prefix}_{m.column}"]))
            continue
        exprs = [_interaction_column(ctx, c) for c in m.columns]
        missing = [c for c, e in zip(m.columns, exprs, strict=True) if e is None]
        if missing:
            skipped.append(m)
            notes.append(
                f"experiment {exp.name}: metric {m.name} skipped: table {ctx.cfg.warehouse.interactions_table!r} "
                f"has no column {', '.join(repr(c) for c in missing)} (valid: a contract column, "
                f"{', '.join(AB_DERIVED_COLUMNS)}, or a column of the table)"
            )
            continue
        if m.type == "binary":
            plans.append(_MetricSql(m, sa.cast(exprs[0], sa.Integer)))
        elif m.type == "continuous":
            plans.append(_MetricSql(m, sa.cast(exprs[0], sa.Double)))
        else:
            plans.append(_MetricSql(m, sa.cast(exprs[0], sa.Double), sa.cast(exprs[1], sa.Double)))
    return from_, plans, notes, skipped


def window_stats(
    ctx: AnalysisContext, exp: ExperimentConfig, from_: sa.FromClause, plans: Sequence[_MetricSql], window: Window
) -> tuple[list[StatRow], dict[str, int]]:
    """The window's moments per configured variant and metric (zeros included, so a
    stored window is known to be complete), and the counts of unconfigured variants."""
    ix = ctx.interactions
    where = sa.and_(
        ix.in_window(),
        valid_rows(ix),
        sa.cast(ix.req("experiment"), sa.String) == sa.bindparam("ab_experiment", exp.name),
    )

    def aggregate(source: sa.FromClause, indexed: list[tuple[int, _MetricSql]], count: bool) -> dict[str, Any]:
        variant = sa.cast(ix.req("variant"), sa.String).label("g_variant")
        cols: list[Any] = [variant] + ([sa.func.count().label("n")] if count else [])
        for i, p in indexed:
            x, y = p.x, p.y
            if y is None:
                cols += [
                    sa.func.count(x).label(f"m{i}_n"),
                    sa.func.sum(x).label(f"m{i}_sx"),
                    sa.func.sum(x * x).label(f"m{i}_sx2"),
                ]
                if p.metric.type == "binary":
                    cols += [sa.func.min(x).label(f"m{i}_min"), sa.func.max(x).label(f"m{i}_max")]
            else:
                both = sa.and_(x.is_not(None), y.is_not(None))
                cols += [
                    sa.func.sum(sa.case((both, 1), else_=0)).label(f"m{i}_n"),
                    sa.func.sum(sa.case((both, x))).label(f"m{i}_sx"),
                    sa.func.sum(sa.case((both, x * x))).label(f"m{i}_sx2"),
                    sa.func.sum(sa.case((both, y))).label(f"m{i}_sy"),
                    sa.func.sum(sa.case((both, y * y))).label(f"m{i}_sy2"),
                    sa.func.sum(sa.case((both, x * y))).label(f"m{i}_sxy"),
                ]
        q = sa.select(*cols).select_from(source).where(where).group_by(sa.literal_column("g_variant"))
        return {
            str(r["g_variant"]) if r["g_variant"] is not None else "(null)": r
            for r in ctx.warehouse.fetch(q, window_params(window))
        }

    indexed = list(enumerate(plans))
    found = aggregate(ctx.interactions.table, [ip for ip in indexed if ip[1].metric.source != "feedback"], True)
    feedback = [ip for ip in indexed if ip[1].metric.source == "feedback"]
    if feedback:
        for v, r in aggregate(from_, feedback, False).items():
            found[v] = {**found.get(v, {}), **r}

    def num(r: Mapping[str, Any], key: str) -> float:
        v = r.get(key)
        return 0.0 if v is None else float(v)

    rows: list[StatRow] = []
    for v in exp.variants:
        r = found.get(v, {})
        rows.append(StatRow(v, ASSIGNMENTS, Moments(int(num(r, "n")))))
        for i, p in enumerate(plans):
            if r and p.metric.type == "binary" and r.get(f"m{i}_n"):
                lo, hi = num(r, f"m{i}_min"), num(r, f"m{i}_max")
                if lo < 0 or hi > 1:
                    raise ValueError(
                        f"experiment {exp.name}: binary metric {p.metric.name!r} has values from {lo:g} to {hi:g} "
                        f"in column {p.metric.column!r} (window {window}); a binary metric needs 0/1 or "
                        "true/false: use type continuous"
                    )
            rows.append(
                StatRow(
                    v,
                    p.metric.name,
                    Moments(
                        int(num(r, f"m{i}_n")),
                        num(r, f"m{i}_sx"),
                        num(r, f"m{i}_sx2"),
                        num(r, f"m{i}_sy"),
                        num(r, f"m{i}_sy2"),
                        num(r, f"m{i}_sxy"),
                    ),
                )
            )
    others = {str(k): int(num(r, "n")) for k, r in found.items() if k not in exp.variants}
    if others:
        rows.append(StatRow(OTHER_VARIANT, ASSIGNMENTS, Moments(sum(others.values()))))
    return rows, others


def first_seen(ctx: AnalysisContext, exp: ExperimentConfig, before: dt.datetime) -> dt.datetime | None:
    """The earliest timestamp of the experiment's valid rows before `before`."""
    ix = ctx.interactions
    ts = ix.req("timestamp")
    q = sa.select(sa.func.min(ts)).where(
        ts < sa.bindparam("ab_before", before, type_=sa.DateTime),
        valid_rows(ix),
        sa.cast(ix.req("experiment"), sa.String) == sa.bindparam("ab_experiment", exp.name),
    )
    v = ctx.warehouse.scalar(q)
    if v is None:
        return None
    return v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(str(v))


def _write(
    abstore: ABStatsStore, exp: ExperimentConfig, w: Window, rows: Sequence[StatRow], run_id: str, names: list[str]
) -> None:
    """Write one window. Concurrent runs of a backfill may write the same window at
    the same time (the same statistics): a write conflict is retried, and a window
    someone else has written meanwhile is left as it is."""
    for attempt in range(4):
        try:
            abstore.write_window(exp.name, w, rows, run_id)
            return
        except sa.exc.DBAPIError:
            if attempt == 3:
                raise
            time.sleep(0.05 * 2**attempt)
            if w.start in abstore.covered_windows(exp.name, w.granularity, names, w.start, w.end):
                return


def run_experiment(ctx: AnalysisContext, exp: ExperimentConfig, abstore: ABStatsStore, run_id: str) -> dict[str, Any]:
    window = ctx.window
    tz, g = window.timezone, window.granularity
    from_, plans, notes, _ = _plan(ctx, exp)
    names = [p.metric.name for p in plans]
    current_date = window.local_start.date()
    if exp.start is not None and current_date < exp.start:
        return {"notes": [f"experiment {exp.name}: starts on {exp.start}; nothing to analyse yet"]}

    start_date = exp.start
    if start_date is None:
        seen = abstore.first_window(exp.name, g) or first_seen(ctx, exp, window.end)
        if seen is None:
            return {
                "records": [MetricRecord.of("ab_status", STATUS_CODES["collecting"], experiment=exp.name)],
                "notes": [f"experiment {exp.name}: no rows with experiment = {exp.name!r} yet"],
            }
        start_date = window_containing(seen, "daily", tz).local_start.date()
    last_date = min(current_date, exp.end) if exp.end else current_date
    windows = [w for w in windows_between(start_date, last_date, g, tz) if w.start <= window.start]
    if not windows:
        return {"notes": [f"experiment {exp.name}: no window to analyse"]}

    last_units = 0
    if windows[-1].start == window.start:
        rows, others = window_stats(ctx, exp, from_, plans, window)
        _write(abstore, exp, window, rows, run_id, names)
        last_units = sum(r.moments.n for r in rows if r.metric == ASSIGNMENTS and r.variant != OTHER_VARIANT)
        if others:
            shown = ", ".join(f"{k!r} {n:,}" for k, n in sorted(others.items(), key=lambda kv: -kv[1])[:5])
            notes.append(f"experiment {exp.name}: variant values not in the config this window: {shown}")
    covered = abstore.covered_windows(exp.name, g, names, windows[0].start, window.start)
    missing = [w for w in windows if w.start not in covered and w.start != window.start]
    if missing:
        # Catch up once (a first run, a new metric): windows before the experiment's
        # first row are stored as zeros without a query.
        seen = first_seen(ctx, exp, missing[-1].end)
        for w in missing:
            if seen is None or w.end <= seen:
                empty, _ = window_stats_zero(exp, plans)
                _write(abstore, exp, w, empty, run_id, names)
            else:
                rows, _ = window_stats(ctx, exp, from_, plans, w)
                _write(abstore, exp, w, rows, run_id, names)
        notes.append(f"experiment {exp.name}: computed the statistics of {len(missing)} earlier windows (catch-up)")

    stored_rows = abstore.load(exp.name, g, windows[0].start, windows[-1].start)
    wanted = set(names) | {ASSIGNMENTS}
    looks: list[dict[Key, Moments]] = []
    for w in windows:
        looks.append({(r.variant, r.metric): r.moments for r in stored_rows.get(w.start, []) if r.metric in wanted})
    used = exp.model_copy(update={"metrics": tuple(p.metric for p in plans)}) if len(plans) < len(exp.metrics) else exp
    if not plans:
        notes.append(f"experiment {exp.name}: no usable metric; only the sample ratio is checked")
    res = analyze_looks(used, looks) if plans else _srm_only(exp, looks)
    res = dataclasses.replace(res, first_window=windows[0].start, notes=tuple(notes))
    return {
        "records": experiment_records(res, exp.control),
        "notes": experiment_notes(res, window, last_units),
        "details": result_details(res),
    }


def window_stats_zero(exp: ExperimentConfig, plans: Sequence[_MetricSql]) -> tuple[list[StatRow], dict[str, int]]:
    rows = [StatRow(v, ASSIGNMENTS, Moments()) for v in exp.variants]
    rows += [StatRow(v, p.metric.name, Moments()) for v in exp.variants for p in plans]
    return rows, {}


def _srm_only(exp: ExperimentConfig, looks: Sequence[Mapping[Key, Moments]]) -> ExperimentResult:
    units = {v: sum(look.get((v, ASSIGNMENTS), Moments()).n for look in looks) for v in exp.variants}
    w = exp.weights
    srm = srm_test([units[v] for v in exp.variants], [w[v] for v in exp.variants], exp.srm_threshold)
    status = "invalid" if srm.mismatch else "collecting"
    return ExperimentResult(
        exp.name, status, exp.sequential, exp.correction, exp.alpha, len(looks), None, units, 0, srm, (), None
    )


def analyze_abtest(ctx: AnalysisContext) -> AnalyzerResult:
    experiments = ctx.cfg.experiments
    if not experiments:
        return AnalyzerResult("abtest", ())
    ix = ctx.interactions
    if not ix.has("experiment", "variant"):
        absent = [c for c in ("experiment", "variant") if not ix.has(c)]
        return AnalyzerResult(
            "abtest",
            (),
            (f"A/B experiments skipped: the table has no {' or '.join(absent)} column (map it in warehouse.columns)",),
        )
    abstore = ABStatsStore(ctx.cfg)
    abstore.ensure()
    run_id = f"abtest-{uuid.uuid4().hex[:12]}"
    records: list[MetricRecord] = []
    notes: list[str] = []
    details: list[dict[str, Any]] = []
    for exp in experiments:
        out = run_experiment(ctx, exp, abstore, run_id)
        records.extend(out.get("records", []))
        notes.extend(out.get("notes", []))
        if "details" in out:
            details.append(out["details"])
    return AnalyzerResult("abtest", tuple(records), tuple(notes), {"experiments": details})
