"""Quality figures: classification, generation (ROUGE, BLEU), RAG retrieval, user
feedback, and how each compares with its reference (concept drift).

Each family reads what it needs and says in a note what it skipped and why; one
family having nothing to work with never stops the others.

- figures.py: `Figure` and `Family`, what every family returns.
- reads.py: the segment columns and per-segment masks every family shares.
- classification.py: accuracy, precision, recall, F1 from warehouse confusion counts.
- generation.py: ROUGE and BLEU on a seeded sample, with bootstrap 95% intervals.
- rag_ids.py, rag.py: id lists read, then P@k, R@k, NDCG@k, hit rate@k and MRR.
- feedback.py: the feedback table joined to the window's requests; rating, helpfulness.
- concept_drift.py: each tracked figure against its stored reference.
- analyzer.py: `analyze_quality`, which runs the families and composes the result.

Every quality figure ``X{labels}`` has ``quality_sample_size{metric="X", labels}``; the
ones that measure how good something is also get ``quality_reference_value`` and
``quality_change_ratio`` (value / reference - 1) against the median of the previous
``reference.previous_windows`` windows' stored figures (or the fixed baseline period).
"""

from aimon.tasks.quality.analyzer import analyze_quality

__all__ = ["analyze_quality"]
