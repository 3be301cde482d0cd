"""The quality analyzer: runs each family (one having nothing to work with never stops
the others), turns figures into records with their sample sizes, and adds concept
drift against the stored reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aimon.records import AnalyzerResult, MetricRecord
from aimon.tasks.orchestration.context import AnalysisContext
from aimon.tasks.quality.classification import classification_family
from aimon.tasks.quality.concept_drift import TRACKED, concept_drift, reference_range, reference_values
from aimon.tasks.quality.estimated import estimation_family
from aimon.tasks.quality.feedback import feedback_family
from aimon.tasks.quality.figures import Figure
from aimon.tasks.quality.generation import generation_family
from aimon.tasks.quality.rag import rag_family
from aimon.tasks.quality.semantic import reference_similarity_family, semantic_family

FAMILIES = {
    "classification": classification_family,
    "estimation": estimation_family,
    "generation": generation_family,
    "rag": rag_family,
    "feedback": feedback_family,
    "semantic": semantic_family,
    "reference_similarity": reference_similarity_family,
}


def quality_records(figures: Sequence[Figure]) -> list[MetricRecord]:
    out = []
    for f in figures:
        out.append(MetricRecord(f.metric, f.labels, f.value))
        out.append(MetricRecord.of("quality_sample_size", f.n, metric=f.metric, **dict(f.labels)))
    return out


def analyze_quality(ctx: AnalysisContext) -> AnalyzerResult:
    figures: list[Figure] = []
    records: list[MetricRecord] = []
    notes: list[str] = []
    details: dict[str, Any] = {}
    for name, family in FAMILIES.items():
        fam = family(ctx)
        figures.extend(fam.figures)
        records.extend(fam.extra)
        notes.extend(fam.notes)
        details[name] = fam.details
    records = quality_records(figures) + records
    if figures:
        ref = ctx.cfg.reference
        _, _, baseline_name = reference_range(ctx.window, ref)
        history = reference_values(ctx.store, ctx.window, ref, sorted({f.metric for f in figures} & set(TRACKED)))
        drift, drift_notes = concept_drift(figures, history, ctx.cfg.quality, baseline_name)
        records.extend(drift)
        notes = drift_notes + notes
    return AnalyzerResult("quality", tuple(records), tuple(notes), details)
