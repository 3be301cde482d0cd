"""The quality part of the run summary: one row per model, each figure with its change
against the reference where there is one (quality_change_ratio)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from aimon.records import ALL

if TYPE_CHECKING:
    from aimon.tasks.orchestration.run import RunSummary

# (column, metric, extra labels, format)
COLUMNS: tuple[tuple[str, str, dict[str, str], str], ...] = (
    ("accuracy", "model_accuracy", {}, ".3f"),
    ("macro F1", "model_f1", {"average": "macro"}, ".3f"),
    ("ROUGE-L", "generation_rouge", {"variant": "rougeL"}, ".3f"),
    ("BLEU", "generation_bleu", {}, ".1f"),
    ("rating", "feedback_rating_mean", {}, ".2f"),
    ("helpful", "feedback_helpful_ratio", {}, ".0%"),
    ("feedback", "feedback_coverage", {}, ".1%"),
)


def _cell(summary: RunSummary, metric: str, spec: str, labels: dict[str, str]) -> str:
    value = summary.value(metric, **labels)
    if value is None:
        return "-"
    change = summary.value("quality_change_ratio", metric=metric, **labels)
    text = format(value, spec)
    if change is None or abs(change) < 0.005:
        return text
    colour = "red" if change < 0 else "green"
    return f"{text} [{colour}]({change:+.0%})[/{colour}]"


def quality_table(summary: RunSummary) -> Table | None:
    """None when the run has no quality figures."""
    models = sorted(
        {
            r.label("model") or ""
            for r in summary.records
            if r.metric in {m for _, m, _, _ in COLUMNS} and r.label("experiment") is None
        },
        key=lambda m: (m == ALL, m),
    )
    if not models:
        return None
    t = Table(
        title=f"{summary.window.label}: quality by model (change vs reference)",
        title_justify="left",
    )
    t.add_column("model")
    for col, *_ in COLUMNS:
        t.add_column(col, justify="right")
    for m in models:
        t.add_row(
            "all" if m == ALL else m,
            *[_cell(summary, metric, spec, {"model": m, **extra}) for _, metric, extra, spec in COLUMNS],
            style="bold" if m == ALL else None,
        )
    return t


def retrieval_line(summary: RunSummary) -> str | None:
    ks = sorted({int(r.label("k") or 0) for r in summary.records if r.metric == "rag_recall_at_k"})
    if not ks:
        return None
    k = str(ks[-1])
    parts = [
        f"recall@{k} {_cell(summary, 'rag_recall_at_k', '.3f', {'k': k})}",
        f"NDCG@{k} {_cell(summary, 'rag_ndcg_at_k', '.3f', {'k': k})}",
        f"MRR {_cell(summary, 'rag_mrr', '.3f', {})}",
    ]
    n = summary.value("quality_sample_size", metric="rag_mrr")
    return "retrieval: " + ", ".join(parts) + (f" over {n:,.0f} queries" if n is not None else "")
