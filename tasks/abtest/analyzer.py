"""A/B experiments, analysed cumulatively from their start and safe to look at daily.

Each run computes the window's sufficient statistics per experiment, variant and
metric in the warehouse (reads.py), stores them in the A/B statistics table
(aimon/store/abstats.py), fills in any earlier window of the experiment that is not
stored yet, and analyses the cumulative statistics (looks.py):

- per variant and metric: mean, absolute difference and relative lift against the
  control with intervals, a p-value (aimon/stats/abtests.py); with `sequential: true`
  (the default) the p-value and intervals are always-valid (mSPRT, running minimum of
  the p-value and running intersection of the intervals over every window since the
  start), so looking every day does not inflate false positives;
- Holm or Benjamini-Hochberg across the experiment's metrics x variants;
- a sample-ratio-mismatch check of the assignments against the expected split,
  cumulative and over the last windows (`srm_spans`);
- a decision status per comparison and per experiment.

The results become metric records, notes and details in records.py.

The unit of analysis is the request (the row): per-window sums add up only for units
that live in one window. Experiments randomised per user get intervals that are too
narrow when users send many correlated requests (docs: A/B experiments).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from aimon.config import ExperimentConfig
from aimon.records import AnalyzerResult, MetricRecord
from aimon.stats.abtests import Moments
from aimon.store.abstats import ASSIGNMENTS, OTHER_VARIANT, ABStatsStore, StatRow
from aimon.tasks.abtest.cuped import cuped_details, cuped_notes, cuped_records, run_cuped
from aimon.tasks.abtest.looks import analyze_looks, srm_only
from aimon.tasks.abtest.reads import first_seen, plan_metrics, window_stats, window_stats_zero
from aimon.tasks.abtest.records import experiment_notes, experiment_records, result_details
from aimon.tasks.abtest.results import STATUS_CODES, Key
from aimon.tasks.orchestration.context import AnalysisContext
from aimon.windows import Window, window_containing, windows_between


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
    """One experiment in this run: store this window's statistics, catch up earlier
    windows not stored yet, analyse them all; records, notes and details."""
    window = ctx.window
    tz, g = window.timezone, window.granularity
    from_, plans, notes, _ = plan_metrics(ctx, exp)
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
    res = analyze_looks(used, looks, g) if plans else srm_only(exp, looks, g)
    res = dataclasses.replace(res, first_window=windows[0].start, notes=tuple(notes))
    cuped = run_cuped(ctx, exp, plans, windows[0].start, window.end)
    return {
        "records": experiment_records(res, exp.control) + cuped_records(exp, cuped),
        "notes": experiment_notes(res, window, last_units) + cuped_notes(exp, cuped),
        "details": {**result_details(res), "cuped": cuped_details(cuped)},
    }


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
