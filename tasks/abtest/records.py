"""How an ExperimentResult is reported: its metric records (ab_status, ab_lift, ...),
the run's notes in words, and the plain-dict details the run summary's A/B tables
are drawn from (aimon/cli/summary_ab.py reads them without importing the analyzer).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from aimon.records import MetricRecord
from aimon.tasks.abtest.results import STATUS_CODES, STATUS_TEXT, ExperimentResult
from aimon.windows import Window


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
        # The series without a span is the cumulative split (as before spans existed);
        # ab_srm_detected without a span is 1 when any span is off.
        recs.append(MetricRecord.of("ab_srm_p_value", res.srm.p_value, experiment=e))
        recs.append(MetricRecord.of("ab_srm_detected", 1.0 if res.srm_mismatch else 0.0, experiment=e))
        for s in res.srm_recent:
            span = span_label(s.windows or 0, res.granularity)
            recs.append(MetricRecord.of("ab_srm_p_value", s.result.p_value, experiment=e, span=span))
            recs.append(MetricRecord.of("ab_srm_detected", 1.0 if s.result.mismatch else 0.0, experiment=e, span=span))
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


def span_label(windows: int, granularity: str) -> str:
    """The `span` label of the last `windows` windows: 1d, 1w, 3d; hourly 1h, 7h, 1d."""
    if granularity == "hourly":
        return f"{windows // 24}d" if windows % 24 == 0 else f"{windows}h"
    return f"{windows // 7}w" if windows % 7 == 0 else f"{windows}d"


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
    spans = [("since the start", res.srm)] if res.srm is not None else []
    spans += [(f"over the last {span_label(s.windows or 0, res.granularity)}", s.result) for s in res.srm_recent]
    for where, srm in spans:
        if srm is None or not srm.mismatch:
            continue
        split = ", ".join(f"{n:,}" for n in srm.counts)
        notes.append(
            f"experiment {res.name}: sample ratio mismatch {where}, p = {srm.p_value:.2g} < {srm.threshold:.2g} "
            f"(observed {split} for {', '.join(res.units)}; expected {', '.join(f'{x:,.0f}' for x in srm.expected)}): "
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
    d["srm_recent"] = [
        {"span": span_label(s.windows or 0, res.granularity), **asdict(s.result)} for s in res.srm_recent
    ]
    return d
