"""The drift analyzer: fit the reference, read the current window, calculate the verdict.

analyze_drift composes the other drift modules: the current window is read once
(reads) and its statistics stored, since today's window is tomorrow's reference; the
reference comes from stored statistics where they are still valid (fit); the two are
compared (calculate) and turned into metric records and the run report's notes
(records), plus Evidently's HTML report when drift.html_report asks for it (report).
"""

from __future__ import annotations

from typing import Any

from aimon.records import AnalyzerResult, MetricRecord
from aimon.stats import embedding as ed
from aimon.stats import embedding_rows as er
from aimon.store.reference import ReferenceCache, entry_key
from aimon.tasks.drift.calculate import DriftReport, compare_thinned, judge_embeddings
from aimon.tasks.drift.features import _drift_ix, feature_specs
from aimon.tasks.drift.fit import (
    load_reference,
    pooled_reference,
    reference_embeddings,
    reference_windows,
    stats_hash,
)
from aimon.tasks.drift.history import EMBEDDING, Bound, History, read_history
from aimon.tasks.drift.reads import read_window
from aimon.tasks.drift.records import drift_records, summary_line
from aimon.tasks.drift.report import save_html_report
from aimon.tasks.orchestration.context import AnalysisContext
from aimon.tasks.orchestration.segments import describe_segments, segmented


def analyze_drift(ctx: AnalysisContext) -> AnalyzerResult:
    cfg, dcfg = ctx.cfg, ctx.cfg.drift
    specs, notes = feature_specs(cfg, ctx.interactions)
    ix = _drift_ix(ctx.interactions, specs, cfg)
    cache = ReferenceCache(cfg.store_url)
    h = stats_hash(cfg, specs)
    current, stored = read_window(ctx, ix, specs, ctx.window)
    if segmented(ctx):
        notes.append(describe_segments(ctx, "drift numerical features"))
    # Malformed embeddings are left out of embedding drift only, and counted (every
    # reason, zero included, once the column was read); feature drift keeps their rows.
    rejected = [MetricRecord.of("embedding_rows_rejected", n, reason=r) for r, n in current.embedding_rejected.items()]
    if dcfg.embeddings is not None:
        dim = None if current.embeddings is None else int(current.embeddings.shape[1])
        note = er.describe_rejected(current.embedding_rejected, dim, dcfg.embeddings.column)
        notes += [note] if note else []
    # Today's window is tomorrow's reference: keep its statistics (unless a rerun
    # already stored them for the same rows).
    key = entry_key(h, ctx.window.start, ctx.window.end)
    if cache.rows(key) != current.rows:
        cache.put(key, ctx.window.start, ctx.window.end, h, stored)
    ref = load_reference(ctx, ix, specs, cache, h)
    # The stored drift figures of past windows: the learned bounds' history, and which
    # reference windows drifted (left out of that feature's reference; never with a
    # fixed baseline period, which the user chose).
    history = read_history(
        ctx.store, ctx.window, dcfg, [] if cfg.reference.baseline else reference_windows(cfg, ctx.window)
    )
    full, thinned = ref.stats, set[str]()
    if dcfg.reference_excludes_drifted and cfg.reference.baseline is None:
        ref, left_out_notes, thinned = pooled_reference(ref, specs, history.drifted, EMBEDDING)
        notes += left_out_notes
    learned: History | None = history if dcfg.thresholds.mode == "learned" else None
    notes.append(
        f"drift reference: {ref.windows} window(s), {ref.stats.rows:,} rows; "
        f"{ref.from_cache} from stored statistics, {ref.read} read"
    )
    if current.rows == 0 or ref.stats.rows == 0:
        notes.append(f"drift: skipped, no accepted rows in the {'current window' if not current.rows else 'reference'}")
        return AnalyzerResult("drift", tuple(rejected), tuple(notes), {"reference_windows_read": ref.read})
    report = compare_thinned(full, ref.stats, thinned, current, specs, dcfg, learned)
    notes += report.notes
    emb_results: tuple[ed.EmbeddingTestResult, ...] = ()
    emb_drift: bool | None = None
    emb_bound: Bound | None = None
    emb_judged = True
    if dcfg.embeddings is not None:
        e = dcfg.embeddings
        ref_emb, left_out = None, None
        if current.embeddings is not None:
            ref_emb, left_out = reference_embeddings(ref.embedding_parts, current.embeddings.shape[1], e.cap, e.seed)
        notes += [left_out] if left_out else []
        if current.embeddings is None or ref_emb is None or not len(ref_emb):
            notes.append(f"embedding drift: skipped, no usable {e.column!r} values on both sides")
        else:
            emb_results, emb_drift, emb_bound, emb_judged, note = judge_embeddings(
                ref_emb, current.embeddings, dcfg, learned
            )
            notes += [note] if note else []
    report = DriftReport(
        report.features,
        report.share,
        report.dataset_drift,
        report.dataset_share,
        emb_results,
        emb_drift,
        report.notes,
        emb_bound,
        emb_judged,
    )
    notes.append(summary_line(report))
    details: dict[str, Any] = {
        "reference_windows": ref.windows,
        "reference_windows_cached": ref.from_cache,
        "reference_windows_read": ref.read,
        "reference_rows": ref.stats.rows,
        "current_rows": current.rows,
        "report": report,
    }
    if dcfg.html_report:
        details["html_report"] = str(save_html_report(ctx, ix, specs))
        notes.append(f"drift report: {details['html_report']}")
    return AnalyzerResult("drift", (*drift_records(report), *rejected), tuple(notes), details)
