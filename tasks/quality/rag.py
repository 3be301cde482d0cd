"""RAG retrieval figures: precision@k, recall@k, NDCG@k, hit rate@k and MRR, per query
and averaged over the queries that have relevant ids. `rag_scores` is the definition
(plain Python); `rank_hits` computes the same with integer arithmetic on
dictionary-encoded ids. `RagSums` holds per-query sums, so row slices and time segments
(a segment function's result, tasks/orchestration/segments.py) add up exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from aimon.records import MetricRecord
from aimon.tasks.contract import valid_rows
from aimon.tasks.orchestration.context import AnalysisContext
from aimon.tasks.orchestration.segments import describe_segments, map_segments, segmented
from aimon.tasks.quality.figures import Family, Figure
from aimon.tasks.quality.rag_ids import IdLists, id_lists
from aimon.warehouse import window_params
from aimon.windows import Window

RAG_METRICS = ("rag_precision_at_k", "rag_recall_at_k", "rag_ndcg_at_k", "rag_hit_rate_at_k")
RAG_EXCLUDED = ("no_relevant_ids", "missing_retrieved_ids", "invalid_retrieved_ids", "invalid_relevant_ids")
RAG_SLICE_ROWS = 500_000  # rows of id lists parsed and ranked at a time


def rag_scores(
    retrieved: Sequence[Sequence[str]], relevant: Sequence[Sequence[str]], ks: Sequence[int]
) -> dict[tuple[str, int | None], np.ndarray]:
    """Per-query precision@k, recall@k, NDCG@k (binary relevance), hit rate@k and
    reciprocal rank. Decisions: a retrieved id repeated counts once, at its first
    rank (later copies are dropped and the ranks close up); relevant ids are a set;
    with fewer than k retrieved, precision@k still divides by k (empty slots are
    misses). Every query must have at least one relevant id."""
    n = len(retrieved)
    kmax = max(ks)
    hits = np.zeros((n, kmax), dtype=bool)
    nrel = np.zeros(n, dtype=float)
    rr = np.zeros(n, dtype=float)
    for i, (ret, rel) in enumerate(zip(retrieved, relevant, strict=True)):
        relset = set(rel)
        nrel[i] = len(relset)
        ranked = list(dict.fromkeys(ret))
        for r, d in enumerate(ranked):
            if d in relset:
                if not rr[i]:
                    rr[i] = 1.0 / (r + 1)
                if r < kmax:
                    hits[i, r] = True
    return retrieval_metrics(hits, nrel, rr, ks)


def retrieval_metrics(
    hits: np.ndarray, nrel: np.ndarray, rr: np.ndarray, ks: Sequence[int]
) -> dict[tuple[str, int | None], np.ndarray]:
    """The figures from hits (n, max k: relevant at rank r?), relevant-id counts and
    reciprocal ranks."""
    if len(nrel) and not nrel.all():
        raise ValueError("rag_scores: every query needs at least one relevant id")
    kmax = hits.shape[1]
    disc = 1.0 / np.log2(np.arange(2, kmax + 2))
    ideal = np.cumsum(disc)
    cum = np.cumsum(hits, axis=1)
    out: dict[tuple[str, int | None], np.ndarray] = {("rag_mrr", None): rr}
    for k in ks:
        found = cum[:, k - 1].astype(float)
        out[("rag_precision_at_k", k)] = found / k
        out[("rag_recall_at_k", k)] = found / nrel
        out[("rag_hit_rate_at_k", k)] = (found > 0).astype(float)
        dcg = hits[:, :k] @ disc[:k]
        idcg = ideal[np.minimum(k, nrel.astype(int)) - 1]
        out[("rag_ndcg_at_k", k)] = dcg / idcg
    return out


def _keys(lists: IdLists, codes: np.ndarray, q: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(query, id code) as one int64 per id, for the ids of the rows in use, in order."""
    qq = q[lists.parent]
    use = qq >= 0
    return qq[use], qq[use] * width + codes[use]


def rank_hits(
    retrieved: IdLists, relevant: IdLists, use: np.ndarray, kmax: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """For the rows in `use`: hits (m, kmax), distinct relevant ids, reciprocal rank,
    and how many queries retrieved an id twice; the same decisions as `rag_scores`
    (a repeated retrieved id ranks at its first occurrence). Ids are dictionary-encoded
    once, so everything after is integer arithmetic."""
    m = int(use.sum())
    q = np.full(retrieved.n, -1, dtype=np.int64)
    q[use] = np.arange(m)
    both = pa.concat_arrays([retrieved.ids, relevant.ids]).dictionary_encode()
    codes = np.asarray(both.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    width = max(len(both.dictionary), 1)
    ret_q, ret_key = _keys(retrieved, codes[: len(retrieved.ids)], q, width)
    _, rel_key = _keys(relevant, codes[len(retrieved.ids) :], q, width)
    # Sort-based throughout: numpy's hash-based unique is slow on millions of keys.
    order = np.argsort(ret_key, kind="stable")
    sorted_keys = ret_key[order]
    is_first = np.ones(len(order), dtype=bool)
    is_first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    dup_queries = np.zeros(m, dtype=bool)
    dup_queries[ret_q[order[~is_first]]] = True
    duplicates = int(dup_queries.sum())
    # First occurrences, back in list order (rows are in order, so queries ascend).
    first = np.sort(order[is_first])
    ret_q, ret_key = ret_q[first], ret_key[first]
    pos = np.arange(len(ret_q)) - np.searchsorted(ret_q, ret_q, side="left")
    rel_key = np.sort(rel_key)
    if len(rel_key):
        keep = np.ones(len(rel_key), dtype=bool)
        keep[1:] = rel_key[1:] != rel_key[:-1]
        rel_key = rel_key[keep]
    nrel = np.bincount(rel_key // width, minlength=m).astype(float)
    at = np.minimum(np.searchsorted(rel_key, ret_key), max(len(rel_key) - 1, 0))
    hit = rel_key[at] == ret_key if len(rel_key) else np.zeros(len(ret_key), dtype=bool)
    hq, hpos = ret_q[hit], pos[hit]
    hits = np.zeros((m, kmax), dtype=bool)
    top = hpos < kmax
    hits[hq[top], hpos[top]] = True
    rr = np.zeros(m)
    first_hit = np.ones(len(hq), dtype=bool)
    first_hit[1:] = hq[1:] != hq[:-1]
    rr[hq[first_hit]] = 1.0 / (hpos[first_hit] + 1)
    return hits, nrel, rr, duplicates


@dataclass
class RagSums:
    """What RAG's figures are made of, summed over queries: every figure is a sum over
    queries divided by their number, so slices and time segments add up (a segment
    function's result, tasks/orchestration/segments.py)."""

    excluded: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RAG_EXCLUDED, 0))
    sums: dict[tuple[str, int | None], float] = field(default_factory=dict)
    n: int = 0  # queries scored
    duplicates: int = 0  # queries that retrieved an id twice

    def add(self, other: RagSums) -> None:
        for reason, c in other.excluded.items():
            self.excluded[reason] = self.excluded.get(reason, 0) + c
        for key, total in other.sums.items():
            self.sums[key] = self.sums.get(key, 0.0) + total
        self.n += other.n
        self.duplicates += other.duplicates

    @classmethod
    def merge(cls, parts: Sequence[RagSums]) -> RagSums:
        out = cls()
        for p in parts:
            out.add(p)
        return out


def rag_sums(ctx: AnalysisContext, bounds: Window) -> RagSums:
    """Per-query sums of the valid rows with relevant ids in `bounds` (the table has
    both id columns: rag_family checks)."""
    q = ctx.cfg.quality
    ix = ctx.interactions
    ret_c, rel_c = ix.req("retrieved_ids"), ix.req("relevant_ids")
    stmt = (
        sa.select(ret_c.label("retrieved"), rel_c.label("relevant"))
        .select_from(ix.table)
        .where(ix.in_window(), valid_rows(ix), rel_c.is_not(None))
    )
    t = ctx.warehouse.fetch_arrow(stmt, window_params(bounds))
    # In slices of rows: every figure is a mean over queries and every count a sum, so
    # the slices add up exactly, and the id lists' intermediates stay bounded (a 10M-row
    # day's 3M queries at once peaked near 4 GiB).
    out = RagSums()
    for offset in range(0, max(t.num_rows, 1), RAG_SLICE_ROWS):
        part = t.slice(offset, RAG_SLICE_ROWS)
        retrieved = id_lists(part.column("retrieved"), q.id_format, q.id_delimiter)
        relevant = id_lists(part.column("relevant"), q.id_format, q.id_delimiter)
        bad_ret, bad_rel = retrieved.bad, relevant.bad
        missing_ret = retrieved.null & ~bad_ret
        no_rel = ~relevant.null & ~bad_rel & (np.bincount(relevant.parent, minlength=relevant.n) == 0)
        reasons = {
            "invalid_relevant_ids": bad_rel,
            "no_relevant_ids": no_rel,
            "invalid_retrieved_ids": bad_ret & ~bad_rel & ~no_rel,
            "missing_retrieved_ids": missing_ret & ~bad_rel & ~no_rel,
        }
        use = ~(bad_rel | no_rel | bad_ret | missing_ret | relevant.null)
        hits, nrel, rr, part_dups = rank_hits(retrieved, relevant, use, max(q.k))
        out.add(
            RagSums(
                {reason: int(reasons[reason].sum()) for reason in RAG_EXCLUDED},
                {key: float(per_query.sum()) for key, per_query in retrieval_metrics(hits, nrel, rr, q.k).items()},
                int(use.sum()),
                part_dups,
            )
        )
    return out


def rag_family(ctx: AnalysisContext) -> Family:
    fam = Family()
    ix = ctx.interactions
    if not ix.has("retrieved_ids", "relevant_ids"):
        missing = [c for c in ("retrieved_ids", "relevant_ids") if not ix.has(c)]
        fam.notes.append(f"RAG skipped: the table has no {' or '.join(missing)} column")
        return fam
    if segmented(ctx):
        # Sums of per-query values add up across segments; only the order of the float
        # additions differs from one read (figures equal to ~1e-15 relative).
        sums = RagSums.merge(map_segments(ctx, rag_sums, ctx.window))
        fam.notes.append(describe_segments(ctx, "RAG"))
    else:
        sums = rag_sums(ctx, ctx.window)
    counts, n, dups = sums.excluded, sums.n, sums.duplicates
    for reason in RAG_EXCLUDED:
        fam.extra.append(MetricRecord.of("rag_excluded_queries", counts[reason], reason=reason))
    fam.extra.append(MetricRecord.of("rag_duplicate_id_queries", dups))
    excluded = {k: v for k, v in counts.items() if v}
    if excluded:
        fam.notes.append(
            "RAG: left out " + ", ".join(f"{v:,} queries with {k.replace('_', ' ')}" for k, v in excluded.items())
        )
    if dups:
        fam.notes.append(f"RAG: {dups:,} queries retrieved an id twice (counted once, at its first rank)")
    if not n:
        fam.notes.append("RAG: no queries with relevant ids in this window")
        return fam
    for (metric, k), total in sums.sums.items():
        labels = {"k": k} if k is not None else {}
        fam.figures.append(Figure.of(metric, total / n, n, **labels))
    fam.details = {"queries": n, "excluded": excluded, "duplicates": dups}
    return fam
