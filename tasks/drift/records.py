"""The drift results as aimon reports them: the MetricRecords (data_drift_*,
embedding_drift_*) and the one-line summary the run report shows."""

from __future__ import annotations

import math

from aimon.records import MetricRecord
from aimon.stats import embedding as ed
from aimon.tasks.drift.calculate import DriftReport
from aimon.tasks.drift.history import size_scale


def summary_line(report: DriftReport) -> str:
    n = len(report.features)
    head = (
        f"drift: {len(report.drifted)} of {n} features drifted ({report.share:.0%}; "
        f"dataset drift at {report.dataset_share:.0%}: {'YES' if report.dataset_drift else 'no'})"
    )
    if report.drifted:
        head += ": " + "; ".join(f.explain() for f in report.drifted)
    if report.not_judged:
        head += f"; not judged (too few rows): {', '.join(f.feature for f in report.not_judged)}"
    if report.embeddings:
        parts = ", ".join(
            f"{r.method} {r.statistic:.3g}" + (f" p={r.p_value:.2g}" if r.p_value is not None else "")
            for r in report.embeddings
        )
        e0 = report.embeddings[0]
        verdict = ("YES" if report.embedding_drift else "no") if report.embedding_judged else "not judged"
        bound = "" if report.embedding_bound is None else f"; AUC {report.embedding_bound.describe()}"
        head += f". Embedding drift: {verdict} ({parts}{bound}; {e0.n_reference:,} vs {e0.n_current:,} rows sampled)"
    return head


def drift_records(report: DriftReport) -> list[MetricRecord]:
    recs: list[MetricRecord] = []
    for f in report.features:
        recs.append(MetricRecord.of("data_drift_score", _finite(f.statistic), feature=f.feature, method=f.method))
        if f.effect_method != f.method:
            recs.append(MetricRecord.of("data_drift_score", f.effect, feature=f.feature, method=f.effect_method))
        scaled = f.effect * size_scale(f.n_reference, f.n_current)
        if math.isfinite(scaled):  # the learned bound's history (thresholds.scale: rows)
            recs.append(MetricRecord.of("data_drift_scaled_score", scaled, feature=f.feature, method=f.effect_method))
        recs.append(MetricRecord.of("data_drift_p_value", f.p_value, feature=f.feature, method=f.test_method))
        recs.append(
            MetricRecord.of("data_drift_p_value_adjusted", f.p_value_adjusted, feature=f.feature, method=f.test_method)
        )
        recs.append(MetricRecord.of("data_drift_detected", float(f.detected), feature=f.feature))
        recs.append(MetricRecord.of("data_drift_judged", float(f.judged), feature=f.feature))
        recs.append(MetricRecord.of("data_drift_threshold", f.effect_bound, feature=f.feature, method=f.effect_method))
    recs.append(MetricRecord.of("data_drift_share", report.share))
    recs.append(MetricRecord.of("data_drift_dataset_detected", float(report.dataset_drift)))
    for r in report.embeddings:
        recs.append(MetricRecord.of("embedding_drift_score", r.statistic, method=r.method))
        if r.form is not None:  # which centroid distance the score is (an info figure: 1)
            recs.append(MetricRecord.of("embedding_centroid_distance_info", 1.0, distance=r.form))
        if r.method == "domain_classifier":
            z = ed.auc_z(r.statistic, r.n_reference, r.n_current)
            recs.append(MetricRecord.of("embedding_drift_auc_z", z, method=r.method))
        if r.p_value is not None:
            recs.append(MetricRecord.of("embedding_drift_p_value", r.p_value, method=r.method))
    if report.embedding_drift is not None:
        recs.append(MetricRecord.of("embedding_drift_detected", float(report.embedding_drift)))
        recs.append(MetricRecord.of("embedding_drift_judged", float(report.embedding_judged)))
        auc = next((r for r in report.embeddings if r.method == "domain_classifier"), None)
        if auc is not None and auc.threshold is not None:
            recs.append(MetricRecord.of("embedding_drift_threshold", auc.threshold, method="domain_classifier"))
    return recs


def _finite(v: float) -> float:
    """Chi-square is infinite when a category is new; stores and Prometheus want a number."""
    return v if math.isfinite(v) else 1e300
