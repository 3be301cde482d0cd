"""Concept drift: each tracked quality figure against its reference, the median of the
previous `reference.previous_windows` windows' stored figures (or the fixed baseline
period), as `quality_reference_value` and `quality_change_ratio` (value / reference - 1),
with notes naming the headline figures that fell.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections.abc import Sequence

from aimon.config import QualityConfig, ReferenceConfig
from aimon.records import ALL, MetricRecord
from aimon.store.metrics import Store
from aimon.tasks.quality.figures import Figure
from aimon.tasks.quality.rag import RAG_METRICS
from aimon.windows import Window, daily_window

# Figures where higher is better: these are compared with their reference.
TRACKED = (
    "model_accuracy",
    "model_f1",
    "model_precision",
    "model_recall",
    "generation_rouge",
    "generation_bleu",
    *RAG_METRICS,
    "rag_mrr",
    "feedback_rating_mean",
    "feedback_helpful_ratio",
)
FRIENDLY = {
    "model_accuracy": "accuracy",
    "model_f1": "F1",
    "model_precision": "precision",
    "model_recall": "recall",
    "generation_bleu": "BLEU",
    "rag_precision_at_k": "precision@{k}",
    "rag_recall_at_k": "recall@{k}",
    "rag_ndcg_at_k": "NDCG@{k}",
    "rag_hit_rate_at_k": "hit rate@{k}",
    "rag_mrr": "MRR",
    "feedback_rating_mean": "mean rating",
    "feedback_helpful_ratio": "helpful ratio",
}


def reference_range(window: Window, ref: ReferenceConfig) -> tuple[dt.datetime, dt.datetime, str]:
    """[from, before) of the window starts whose stored figures form the reference,
    and how to name it. A baseline period's end date is included."""
    if ref.baseline is not None:
        tz = window.timezone
        start = daily_window(ref.baseline.start, tz).start
        before = daily_window(ref.baseline.end, tz).end
        return start, before, f"baseline {ref.baseline.start}..{ref.baseline.end}"
    n = ref.previous_windows or 7
    unit = "day" if window.granularity == "daily" else "hour"
    return window.start - (window.end - window.start) * n, window.start, f"{n}-{unit} baseline"


def reference_values(
    store: Store, window: Window, ref: ReferenceConfig, metrics: Sequence[str]
) -> dict[tuple[str, str], list[float]]:
    """Stored values of the same granularity in the reference range, by (metric, labels JSON)."""
    start, before, _ = reference_range(window, ref)
    out: dict[tuple[str, str], list[float]] = {}
    for metric in metrics:
        for f in store.figures(granularity=window.granularity, metric=metric, start_from=start, before=before):
            key = (f.metric, json.dumps(f.labels, sort_keys=True, separators=(",", ":")))
            out.setdefault(key, []).append(f.value)
    return out


def describe(fig: Figure) -> str:
    labels = dict(fig.labels)
    name = FRIENDLY.get(fig.metric)
    if fig.metric == "generation_rouge":
        name = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L"}.get(labels.get("variant", ""), "ROUGE")
    elif name and "{k}" in name:
        name = name.format(k=labels.get("k"))
    if fig.metric in ("model_f1", "model_precision", "model_recall"):
        name = f"{labels.get('average')} {name}"
    skip = {"k", "average", "variant"} if fig.metric == "generation_rouge" else {"k", "average"}
    where = [f"{k}={v}" for k, v in fig.labels if k not in skip and v != ALL]
    return f"{name or fig.metric}" + (f" ({', '.join(where)})" if where else "")


def headline(fig: Figure, cfg: QualityConfig) -> bool:
    """The figures the summary names when they fall (all of them get a change ratio):
    one per family and segment rather than every average, variant and k."""
    labels = dict(fig.labels)
    if fig.metric in ("model_precision", "model_recall", "rag_precision_at_k", "rag_hit_rate_at_k"):
        return False
    if fig.metric == "model_f1":
        return labels.get("average") == "macro"
    if fig.metric == "generation_rouge":
        return labels.get("variant") == "rougeL"
    if fig.metric in ("rag_recall_at_k", "rag_ndcg_at_k"):
        return labels.get("k") == str(max(cfg.k))
    return True


def concept_drift(
    figures: Sequence[Figure], history: dict[tuple[str, str], list[float]], cfg: QualityConfig, baseline_name: str
) -> tuple[list[MetricRecord], list[str]]:
    """`quality_reference_value` and `quality_change_ratio` (value / reference - 1)
    for each tracked figure with a stored reference; notes for the falls."""
    recs: list[MetricRecord] = []
    falls: list[tuple[float, str]] = []
    for f in figures:
        if f.metric not in TRACKED:
            continue
        past = history.get((f.metric, json.dumps(dict(f.labels), sort_keys=True, separators=(",", ":"))))
        if not past:
            continue
        base = statistics.median(past)
        labels = {"metric": f.metric, **dict(f.labels)}
        recs.append(MetricRecord.of("quality_reference_value", base, **labels))
        if base <= 0:
            continue
        change = f.value / base - 1
        recs.append(MetricRecord.of("quality_change_ratio", change, **labels))
        if change <= -cfg.change_note_ratio and f.n >= cfg.change_min_sample and headline(f, cfg):
            falls.append(
                (
                    change,
                    f"{describe(f)} fell {-change:.0%} below its {baseline_name} "
                    f"({f.value:.3g} vs median {base:.3g} of {len(past)} windows; n={f.n:,})",
                )
            )
    falls.sort()
    notes = [text for _, text in falls[:8]]
    if len(falls) > 8:
        notes.append(f"... and {len(falls) - 8} more quality figures fell (see quality_change_ratio)")
    return recs, notes
