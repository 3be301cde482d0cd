"""Drift: the current window against a reference, feature by feature, plus embedding
drift, and a dataset verdict.

As in NannyML, "fit on the reference, calculate on the analysis window":
- features:  which columns are compared, and their SQL expressions;
- reads:     one window's statistics from the warehouse (samples, counts, embeddings);
- fit:       the reference's statistics, stored once per window (aimon.store.reference);
- calculate: the verdict, pure (aimon.stats.stattests, aimon.stats.embedding);
- records:   the metric records and the run report's summary;
- report:    the optional Evidently HTML report;
- analyzer:  analyze_drift, composing them.
"""

from aimon.tasks.drift.analyzer import analyze_drift

__all__ = ["analyze_drift"]
