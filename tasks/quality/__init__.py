"""Quality figures: classification, generation (ROUGE, BLEU), RAG retrieval, user
feedback, and how each compares with its reference (concept drift).

Each family reads what it needs and says in a note what it skipped and why; one
family having nothing to work with never stops the others.

- Classification: confusion counts (model x label x prediction) are aggregated in the
  warehouse; scikit-learn computes the figures from them with the counts as sample
  weights, which equals scoring the rows one by one.
- Generation: (response, reference) pairs are read as Arrow; above ``quality.sample_cap``
  pairs per model a seeded random sample is scored (rouge-score with stemming,
  sacrebleu's corpus BLEU), with a bootstrap 95% interval. Roll-ups over models weight
  each scored pair by its model's population / sample size (a stratified estimate).
- RAG: id lists are native lists, JSON arrays or delimited text; metrics per query,
  averaged over the queries that have relevant ids.
- Feedback: joined to the window's requests on request_id in SQL; feedback belongs to
  the window of its request, whenever it was given.

Every quality figure ``X{labels}`` has ``quality_sample_size{metric="X", labels}``; the
ones that measure how good something is also get ``quality_reference_value`` and
``quality_change_ratio`` (value / reference - 1) against the median of the previous
``reference.previous_windows`` windows' stored figures (or the fixed baseline period).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import statistics
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from aimon.config import QualityConfig, ReferenceConfig
from aimon.errors import ContractError
from aimon.records import ALL, AnalyzerResult, MetricRecord
from aimon.store.metrics import Store
from aimon.tasks.contract import valid_rows
from aimon.tasks.orchestration.context import AnalysisContext
from aimon.tasks.orchestration.segments import describe_segments, map_segments, segmented
from aimon.warehouse import _split, window_params
from aimon.windows import Window, daily_window

ROUGE_VARIANTS = ("rouge1", "rouge2", "rougeL")
AVERAGES = ("weighted", "macro")
RAG_METRICS = ("rag_precision_at_k", "rag_recall_at_k", "rag_ndcg_at_k", "rag_hit_rate_at_k")
RAG_EXCLUDED = ("no_relevant_ids", "missing_retrieved_ids", "invalid_retrieved_ids", "invalid_relevant_ids")
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


@dataclass(frozen=True)
class Figure:
    """One quality figure and the number of rows (pairs, queries, ratings) behind it."""

    metric: str
    labels: tuple[tuple[str, str], ...]
    value: float
    n: int

    @classmethod
    def of(cls, metric: str, value: float, n: int, **labels: Any) -> Figure:
        return cls(metric, tuple(sorted((k, str(v)) for k, v in labels.items())), float(value), int(n))


@dataclass
class Family:
    """What one family found: figures with sample sizes, other records, notes."""

    figures: list[Figure] = field(default_factory=list)
    extra: list[MetricRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


# -- segments: per model, all models, and per experiment variant --------------------


def segment_columns(ctx: AnalysisContext) -> list[sa.ColumnElement[Any]]:
    ix = ctx.interactions
    cols: list[sa.ColumnElement[Any]] = [sa.cast(ix.req("model"), sa.String).label("g_model")]
    exp, var = ix.col("experiment"), ix.col("variant")
    if ctx.cfg.quality.by_variant and exp is not None and var is not None:
        cols += [sa.cast(exp, sa.String).label("g_experiment"), sa.cast(var, sa.String).label("g_variant")]
    return cols


def segments(df: pd.DataFrame) -> Iterator[tuple[dict[str, str], np.ndarray]]:
    """(labels, boolean row mask): each model, every model (``__all__``), and each
    (experiment, variant) over all models when those columns were read."""
    models = df["g_model"].astype(str).to_numpy() if len(df) else np.array([], dtype=str)
    for m in sorted(set(models)):
        yield {"model": m}, models == m
    yield {"model": ALL}, np.ones(len(df), dtype=bool)
    if "g_experiment" in df.columns and len(df):
        exp, var = df["g_experiment"], df["g_variant"]
        known = (exp.notna() & var.notna()).to_numpy()
        pairs = sorted({(str(e), str(v)) for e, v in zip(exp[known], var[known], strict=True)})
        e_arr, v_arr = exp.astype(str).to_numpy(), var.astype(str).to_numpy()
        for e, v in pairs:
            yield {"model": ALL, "experiment": e, "variant": v}, known & (e_arr == e) & (v_arr == v)


def _fetch_frame(ctx: AnalysisContext, stmt: sa.Select[Any]) -> pd.DataFrame:
    return pd.DataFrame(ctx.warehouse.fetch(stmt, ctx.params), columns=[c.key for c in stmt.selected_columns])


# -- classification -------------------------------------------------------------------


def classification_scores(
    y_true: Sequence[Any], y_pred: Sequence[Any], weight: Sequence[float] | None = None
) -> dict[tuple[str, str | None], float]:
    """Accuracy, and precision, recall and F1 averaged `weighted` and `macro`
    (over the labels present in either column), with scikit-learn. A class never
    predicted has precision 0 rather than a warning."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    out: dict[tuple[str, str | None], float] = {
        ("model_accuracy", None): float(accuracy_score(y_true, y_pred, sample_weight=weight))
    }
    for avg in AVERAGES:
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=avg, sample_weight=weight, zero_division=0)
        out[("model_precision", avg)] = float(p)
        out[("model_recall", avg)] = float(r)
        out[("model_f1", avg)] = float(f)
    return out


def confusion_counts(ctx: AnalysisContext) -> pd.DataFrame:
    """Rows with a label or a prediction, counted by segment, label and prediction."""
    ix = ctx.interactions
    label, pred = ix.req("label"), ix.req("prediction")
    seg = segment_columns(ctx)
    stmt = (
        sa.select(
            *seg,
            sa.cast(label, sa.String).label("g_label"),
            sa.cast(pred, sa.String).label("g_prediction"),
            sa.func.count().label("n"),
        )
        .select_from(ix.table)
        .where(ix.in_window(), valid_rows(ix), sa.or_(label.is_not(None), pred.is_not(None)))
        .group_by(
            *[sa.literal_column(str(c.key)) for c in seg],
            sa.literal_column("g_label"),
            sa.literal_column("g_prediction"),
        )
    )
    df = _fetch_frame(ctx, stmt)
    df["n"] = df["n"].astype("int64")
    return df


def label_provisional(window: Window, delay_days: int, now: dt.datetime | None = None) -> bool:
    """True while labels for the window may still be arriving."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return delay_days > 0 and window.end + dt.timedelta(days=delay_days) > now


def classification_family(ctx: AnalysisContext) -> Family:
    fam = Family()
    ix = ctx.interactions
    if not ix.has("label", "prediction"):
        missing = [c for c in ("label", "prediction") if not ix.has(c)]
        fam.notes.append(f"classification skipped: the table has no {' or '.join(missing)} column")
        return fam
    counts = confusion_counts(ctx)
    lab = counts["g_label"].astype("string").str.strip()
    pred = counts["g_prediction"].astype("string").str.strip()
    has_label = (lab.notna() & (lab != "")).to_numpy(dtype=bool)
    has_pred = (pred.notna() & (pred != "")).to_numpy(dtype=bool)
    # A blank label or prediction is bad input, counted once as such (not as awaiting).
    blank = ((lab == "") | (pred == "")).fillna(False).to_numpy(dtype=bool)
    empty = int(counts.loc[blank, "n"].sum())
    awaiting = int(counts.loc[has_pred & lab.isna().to_numpy(dtype=bool), "n"].sum())
    no_pred = int(counts.loc[has_label & pred.isna().to_numpy(dtype=bool), "n"].sum())
    both = has_label & has_pred
    counts = counts.assign(g_label=lab, g_prediction=pred)
    for labels, mask in segments(counts):
        part = counts[mask & both]
        predicted = int(counts.loc[mask & has_pred, "n"].sum())
        if predicted:
            fam.extra.append(MetricRecord.of("quality_label_coverage", part["n"].sum() / predicted, **labels))
        n = int(part["n"].sum())
        if not n:
            continue
        scores = classification_scores(
            part["g_label"].tolist(), part["g_prediction"].tolist(), part["n"].to_numpy(dtype=float)
        )
        for (metric, avg), value in scores.items():
            extra = {"average": avg} if avg else {}
            fam.figures.append(Figure.of(metric, value, n, **labels, **extra))
    labelled = int(counts.loc[both, "n"].sum())
    fam.details = {"labelled": labelled, "awaiting_label": awaiting, "no_prediction": no_pred, "empty": empty}
    for reason, v in (("awaiting_label", awaiting), ("no_prediction", no_pred), ("empty_label_or_prediction", empty)):
        fam.extra.append(MetricRecord.of("quality_excluded_rows", v, family="classification", reason=reason))
    delay = ctx.cfg.quality.label_delay_days
    provisional = label_provisional(ctx.window, delay)
    fam.extra.append(MetricRecord.of("quality_labels_provisional", int(provisional)))
    if not labelled:
        fam.notes.append(
            "classification: no labels in this window"
            + (f" ({awaiting:,} predictions await a label)" if awaiting else "")
        )
    elif awaiting or no_pred or empty:
        parts = [
            f"{v:,} {what}"
            for what, v in (("await a label", awaiting), ("have no prediction", no_pred), ("are empty", empty))
            if v
        ]
        fam.notes.append(f"classification on {labelled:,} labelled rows; left out: " + ", ".join(parts))
    if provisional:
        ready = (ctx.window.end + dt.timedelta(days=delay)).date()
        fam.notes.append(
            f"classification figures are provisional: labels arrive up to {delay} days late; "
            f"rerun this window on or after {ready} (aimon run --date, or a backfill) to recompute them"
        )
    return fam


# -- generation: ROUGE and BLEU -----------------------------------------------------


def rouge_fmeasures(responses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """(n, 3) ROUGE-1/2/L F-measures of each response against its reference
    (rouge-score, Porter stemming on). Identical pairs are scored once."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_VARIANTS), use_stemmer=True)
    cache: dict[tuple[str, str], tuple[float, float, float]] = {}
    out = np.empty((len(responses), len(ROUGE_VARIANTS)), dtype=float)
    for i, pair in enumerate(zip(responses, references, strict=True)):
        row = cache.get(pair)
        if row is None:
            s = scorer.score(pair[1], pair[0])  # score(target=reference, prediction=response)
            row = cache[pair] = tuple(s[v].fmeasure for v in ROUGE_VARIANTS)  # type: ignore[assignment]
        out[i] = row
    return out


@functools.cache
def _bleu() -> Any:
    # One instance: scoring from statistics keeps no state, and building one per
    # bootstrap resample costs more than the scoring.
    from sacrebleu.metrics import BLEU

    return BLEU()


def bleu_statistics(responses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Per-pair BLEU sufficient statistics (n-gram matches and totals, lengths) as
    sacrebleu extracts them; corpus BLEU is a function of their sum."""
    if not len(responses):
        return np.zeros((0, 0))
    bleu = _bleu()
    uniq: dict[tuple[str, str], int] = {}
    idx = np.array([uniq.setdefault(p, len(uniq)) for p in zip(responses, references, strict=True)])
    pairs = list(uniq)
    stats = bleu._extract_corpus_statistics([p[0] for p in pairs], [[p[1] for p in pairs]])
    return np.asarray(stats, dtype=float)[idx]


def bleu_from_statistics(stats_sum: np.ndarray) -> float:
    """Corpus BLEU (0-100, sacrebleu's scale) from summed statistics."""
    return float(_bleu()._compute_score_from_stats(list(stats_sum)).score)


def bootstrap_interval(
    n: int, statistic: Any, iterations: int, rng: np.random.Generator, chunk: int = 100
) -> np.ndarray | None:
    """Percentile 95% interval of `statistic(counts)` over resamples: counts is a
    (B, n) array of how often each row is drawn (n draws with replacement), so a
    statistic is a matrix product rather than a gather of B copies of the data.
    Returns [low, high] (for a vector statistic, one column each), or None without
    iterations or with under 2 rows."""
    if iterations <= 0 or n < 2:
        return None
    values = []
    for start in range(0, iterations, chunk):
        b = min(chunk, iterations - start)
        idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(float)
        values.append(np.asarray(statistic(counts), dtype=float))
    return np.quantile(np.concatenate(values), [0.025, 0.975], axis=0)


def sample_pairs(df: pd.DataFrame, cap: int, seed: int, window: Window) -> tuple[pd.DataFrame, dict[str, int]]:
    """At most `cap` rows per model, drawn without replacement by a generator seeded
    with (seed, window start, model): a rerun scores the same rows. Adds `weight`,
    the model's population / sample size."""
    populations = df.groupby("g_model").size().to_dict() if len(df) else {}
    keep = np.zeros(len(df), dtype=bool)
    weight = np.ones(len(df))
    models = df["g_model"].to_numpy() if len(df) else np.array([])
    stamp = int((window.start - dt.datetime(1970, 1, 1)).total_seconds())
    for m, pop in populations.items():
        rows = np.flatnonzero(models == m)
        if pop > cap:
            rng = np.random.default_rng([seed, stamp, zlib.crc32(str(m).encode())])
            rows = np.sort(rng.choice(rows, size=cap, replace=False))
        keep[rows] = True
        weight[rows] = pop / len(rows)
    return df.assign(weight=weight)[keep].reset_index(drop=True), {str(k): int(v) for k, v in populations.items()}


def generation_pairs(ctx: AnalysisContext) -> pd.DataFrame:
    ix = ctx.interactions
    ref = ix.req("reference")
    resp = ix.col("response")
    seg = segment_columns(ctx)
    order = [ix.req("timestamp")] + ([ix.req("request_id")] if ix.has("request_id") else [])
    stmt = (
        sa.select(
            *seg,
            (sa.cast(resp, sa.String) if resp is not None else sa.null()).label("response"),
            sa.cast(ref, sa.String).label("reference"),
        )
        .select_from(ix.table)
        .where(ix.in_window(), valid_rows(ix), ref.is_not(None))
        .order_by(*order)
    )
    return ctx.warehouse.fetch_arrow(stmt, ctx.params).to_pandas()


def generation_family(ctx: AnalysisContext) -> Family:
    fam = Family()
    ix = ctx.interactions
    if not ix.has("reference"):
        fam.notes.append("generation skipped: the table has no reference column")
        return fam
    if not ix.has("response"):
        fam.notes.append("generation skipped: the table has no response column")
        return fam
    q = ctx.cfg.quality
    df = generation_pairs(ctx)
    ref_blank = df["reference"].str.strip().eq("").to_numpy(dtype=bool) if len(df) else np.zeros(0, bool)
    no_resp = df["response"].isna().to_numpy(dtype=bool) if len(df) else np.zeros(0, bool)
    excluded = {"empty_reference": int(ref_blank.sum()), "missing_response": int((no_resp & ~ref_blank).sum())}
    df = df[~ref_blank & ~no_resp].reset_index(drop=True)
    empty_resp = int(df["response"].str.strip().eq("").sum()) if len(df) else 0
    for reason, v in excluded.items():
        fam.extra.append(MetricRecord.of("quality_excluded_rows", v, family="generation", reason=reason))
    fam.extra.append(MetricRecord.of("generation_empty_responses", empty_resp))
    if not len(df):
        fam.notes.append("generation: no (response, reference) pairs in this window")
        return fam
    sample, populations = sample_pairs(df, q.sample_cap, q.seed, ctx.window)
    responses = sample["response"].tolist()
    references = sample["reference"].tolist()
    rouge = rouge_fmeasures(responses, references)
    stats = bleu_statistics(responses, references)
    w = sample["weight"].to_numpy(dtype=float)
    stamp = int((ctx.window.start - dt.datetime(1970, 1, 1)).total_seconds())
    sampled_models = {m: (len(sample[sample["g_model"] == m]), p) for m, p in populations.items()}
    for labels, mask in segments(sample):
        if "experiment" in labels:
            # `variant` is the ROUGE variant here (the catalogue's label), so the
            # experiment's arm is `experiment_variant` on generation figures.
            arm = labels.pop("variant")
            labels = {**labels, "experiment_variant": arm}
        rows = np.flatnonzero(mask)
        n = len(rows)
        if not n:
            continue
        pop = int(w[rows].sum().round())
        rng = np.random.default_rng([q.seed, stamp, zlib.crc32(json.dumps(labels, sort_keys=True).encode())])
        ww = w[rows]
        x = rouge[rows]
        st = stats[rows] * ww[:, None]
        means = np.average(x, axis=0, weights=ww)

        # One matrix product per chunk of resamples gives the weighted ROUGE sums, the
        # weight sums and the BLEU statistics at once.
        stacked = np.column_stack([x * ww[:, None], ww, st])

        def resampled(c: np.ndarray, stacked: np.ndarray = stacked) -> np.ndarray:
            sums = c @ stacked
            rouge_means = sums[:, :3] / sums[:, 3:4]
            return np.column_stack([rouge_means, [bleu_from_statistics(r) for r in sums[:, 4:]]])

        ci = bootstrap_interval(n, resampled, q.bootstrap_iterations, rng)
        for j, variant in enumerate(ROUGE_VARIANTS):
            fam.figures.append(Figure.of("generation_rouge", means[j], n, variant=variant, **labels))
            if ci is not None:
                fam.extra.append(MetricRecord.of("generation_rouge_ci_low", ci[0, j], variant=variant, **labels))
                fam.extra.append(MetricRecord.of("generation_rouge_ci_high", ci[1, j], variant=variant, **labels))
        fam.figures.append(Figure.of("generation_bleu", bleu_from_statistics(st.sum(0)), n, **labels))
        if ci is not None:
            fam.extra.append(MetricRecord.of("generation_bleu_ci_low", ci[0, -1], **labels))
            fam.extra.append(MetricRecord.of("generation_bleu_ci_high", ci[1, -1], **labels))
        fam.extra.append(MetricRecord.of("quality_population_size", pop, metric="generation", **labels))
    capped = {m: v for m, v in sampled_models.items() if v[0] < v[1]}
    if capped:
        fam.notes.append(
            "generation: scored a seeded sample of "
            + ", ".join(f"{m} {k:,} of {p:,}" for m, (k, p) in sorted(capped.items()))
            + f" pairs (quality.sample_cap {q.sample_cap:,}); 95% intervals in generation_*_ci_low/_high"
        )
    if empty_resp or any(excluded.values()):
        parts = [f"{v:,} {k.replace('_', ' ')}" for k, v in excluded.items() if v]
        if empty_resp:
            parts.append(f"{empty_resp:,} empty responses (scored 0)")
        fam.notes.append("generation: " + ", ".join(parts))
    fam.details = {"pairs": len(df), "scored": len(sample), "populations": populations}
    return fam


# -- RAG retrieval --------------------------------------------------------------------


def _ids_from_text(text: str, fmt: str, delimiter: str) -> list[str] | None:
    """Ids of one text value, or None when it cannot be read."""
    s = text.strip()
    if fmt == "json" or (fmt == "auto" and s.startswith("[")):
        try:
            v = json.loads(s)
        except ValueError:
            return None
        if not isinstance(v, list) or any(isinstance(x, (list, dict)) or x is None for x in v):
            return None
        return [_id(x) for x in v]
    return [p.strip() for p in s.split(delimiter) if p.strip()]


def _id(x: Any) -> str:
    # JSON 3 and the text "3" are the same document; booleans are not ids.
    if isinstance(x, bool):
        return str(x).lower()
    return str(x)


def parse_id_lists(
    values: pa.Array | pa.ChunkedArray | Sequence[Any], fmt: str = "auto", delimiter: str = ","
) -> tuple[list[list[str] | None], np.ndarray]:
    """Each value as a list of id strings (None for null), and a mask of values that
    could not be read (not JSON, not a list, nested values)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = values.to_pylist()
    out: list[list[str] | None] = []
    bad = np.zeros(len(values), dtype=bool)
    cache: dict[str, list[str] | None] = {}
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        if isinstance(v, str):
            ids = cache[v] if v in cache else cache.setdefault(v, _ids_from_text(v, fmt, delimiter))
        elif isinstance(v, (list, tuple, np.ndarray)):
            ids = None if any(isinstance(x, (list, dict)) or x is None for x in v) else [_id(x) for x in v]
        else:
            ids = None
        if ids is None:
            bad[i] = True
        out.append(ids)
    return out, bad


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


# A flat JSON array of numbers and plain strings (no escapes, no commas inside): the
# common case, split with Arrow kernels; anything else goes through json.loads.
_SIMPLE_JSON = r'^\[\s*(?:(?:"[^"\\,]*"|-?[0-9]+)\s*(?:,\s*(?:"[^"\\,]*"|-?[0-9]+)\s*)*)?\]$'
_SEP = "\x1f"  # the ASCII unit separator: not in any sane id
RAG_SLICE_ROWS = 500_000  # rows of id lists parsed and ranked at a time


@dataclass(frozen=True)
class IdLists:
    """Id lists of n rows, flattened: ids[i] belongs to row parent[i], in list order."""

    n: int
    parent: np.ndarray
    ids: pa.Array  # strings
    null: np.ndarray  # the row's value is null
    bad: np.ndarray  # the row's value could not be read


def id_lists(values: pa.Array | pa.ChunkedArray, fmt: str = "auto", delimiter: str = ",") -> IdLists:
    """Read a column of id lists (native lists, JSON arrays or delimited text) with
    Arrow kernels; the same result as `parse_id_lists`, at column speed."""
    import pyarrow.compute as pc

    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    n = len(arr)
    null = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)) and not pa.types.is_nested(arr.type.value_type):
        flat = arr.flatten()
        parent = np.asarray(pc.list_parent_indices(arr).to_numpy(zero_copy_only=False), dtype=np.int64)
        item_null = np.asarray(flat.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        bad = np.zeros(n, dtype=bool)
        bad[parent[item_null]] = True
        keep = ~bad[parent]
        return IdLists(n, parent[keep], _text(flat).filter(pa.array(keep)), null, bad)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        # Other types (nested lists, types of other engines): one row at a time.
        return _id_lists_python(arr.to_pylist(), fmt, delimiter)
    text = pc.utf8_trim_whitespace(arr)
    valid = ~null
    if fmt == "json":
        json_rows = valid
    elif fmt == "auto":
        json_rows = valid & np.asarray(pc.starts_with(text, "[").to_numpy(zero_copy_only=False), dtype=bool)
    else:
        json_rows = np.zeros(n, dtype=bool)
    simple = np.asarray(
        pc.fill_null(pc.match_substring_regex(text, _SIMPLE_JSON), False).to_numpy(zero_copy_only=False), dtype=bool
    )
    slow = json_rows & ~simple
    from_json = pc.replace_substring(pc.replace_substring_regex(text, r'[\[\]"]', ""), ",", _SEP)
    joined = pc.if_else(pa.array(json_rows), from_json, pc.replace_substring(text, delimiter, _SEP))
    bad = np.zeros(n, dtype=bool)
    if slow.any():
        rows = np.flatnonzero(slow)
        parsed, bad_slow = parse_id_lists(arr.take(pa.array(rows)), fmt, delimiter)
        bad[rows[bad_slow]] = True
        fixed = [None if ids is None else _SEP.join(ids) for ids in parsed]
        pos = np.full(n, -1)
        pos[rows] = np.arange(len(rows))
        joined = pc.if_else(pa.array(slow), pa.array(fixed, pa.string()).take(pa.array(pos, mask=pos < 0)), joined)
    lists = pc.split_pattern(pc.if_else(pa.array(bad | null), pa.scalar(None, pa.string()), joined), _SEP)
    parent = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
    ids = pc.utf8_trim_whitespace(lists.flatten())
    keep = np.asarray(pc.not_equal(ids, "").to_numpy(zero_copy_only=False), dtype=bool)
    return IdLists(n, parent[keep], ids.filter(pa.array(keep)), null, bad)


def _text(arr: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    if pa.types.is_boolean(arr.type):
        return pc.if_else(arr, "true", "false")
    return pc.cast(arr, pa.string())


def _id_lists_python(values: Sequence[Any], fmt: str, delimiter: str) -> IdLists:
    parsed, bad = parse_id_lists(values, fmt, delimiter)
    parent = np.array([i for i, ids in enumerate(parsed) if ids for _ in ids], dtype=np.int64)
    ids = pa.array([x for ids in parsed if ids for x in ids], pa.string())
    null = np.array([v is None for v in values], dtype=bool)
    return IdLists(len(values), parent, ids, null, bad)


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
    function's result, tasks/segments.py)."""

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


# -- feedback -------------------------------------------------------------------------


def feedback_table(ctx: AnalysisContext, name: str) -> sa.TableClause:
    cols = ctx.warehouse.table_columns(name)
    if "request_id" not in cols:
        raise ContractError(f"feedback table {name!r} has no request_id column (it has: {', '.join(cols)})")
    schema, table = _split(name)
    wanted = [c for c in ("request_id", "timestamp", "rating", "helpful") if c in cols]
    return sa.table(table, *[sa.column(c) for c in wanted], schema=schema)


def feedback_sums(ctx: AnalysisContext, fb: sa.TableClause) -> pd.DataFrame:
    """Per segment of the window's requests: requests, requests with feedback, and
    feedback sums; feedback is first summed per request, so a request logged twice
    cannot double its feedback."""
    ix = ctx.interactions
    rid = sa.cast(fb.c.request_id, sa.String)
    rating = sa.cast(fb.c.rating, sa.Float) if "rating" in fb.c else None
    helpful = fb.c.helpful if "helpful" in fb.c else None
    valid_rating = sa.and_(rating >= 1, rating <= 5) if rating is not None else sa.false()
    per_req_cols: list[Any] = [rid.label("rid"), sa.func.count().label("n_fb")]
    if rating is not None:
        per_req_cols += [
            sa.func.sum(sa.case((valid_rating, rating), else_=None)).label("rating_sum"),
            sa.func.sum(sa.case((valid_rating, 1), else_=0)).label("n_rating"),
            sa.func.sum(sa.case((sa.and_(rating.is_not(None), sa.not_(valid_rating)), 1), else_=0)).label("n_bad"),
        ]
    if helpful is not None:
        h = sa.cast(helpful, sa.Integer)
        per_req_cols += [
            sa.func.sum(sa.case((h == 1, 1), else_=0)).label("n_helpful"),
            sa.func.sum(sa.case((helpful.is_not(None), 1), else_=0)).label("n_helpful_known"),
        ]
    per_req_q = sa.select(*per_req_cols).select_from(fb).where(fb.c.request_id.is_not(None))
    if "timestamp" in fb.c:
        # Feedback follows its request: skip the table's older history (an hour of
        # slack for clocks that disagree).
        since = sa.bindparam("fb_since", ctx.window.start - dt.timedelta(hours=1), type_=sa.DateTime)
        per_req_q = per_req_q.where(fb.c.timestamp >= since)
    per_req = per_req_q.group_by(rid).subquery("per_request")
    req_id = sa.cast(ix.req("request_id"), sa.String)
    seg = segment_columns(ctx)
    sums = ["n_fb", "rating_sum", "n_rating", "n_bad", "n_helpful", "n_helpful_known"]
    stmt = (
        sa.select(
            *seg,
            sa.func.count(ix.req("request_id")).label("n_requests"),
            sa.func.count(per_req.c.rid).label("n_with_fb"),
            *[sa.func.sum(per_req.c[c]).label(c) for c in sums if c in per_req.c],
        )
        .select_from(ix.table.outerjoin(per_req, req_id == per_req.c.rid))
        .where(ix.in_window(), valid_rows(ix))
        .group_by(*[sa.literal_column(str(c.key)) for c in seg])
    )
    df = _fetch_frame(ctx, stmt)
    for c in ["n_requests", "n_with_fb", *sums]:
        df[c] = pd.to_numeric(df[c].astype(object).where(df[c].notna(), 0)).astype(float) if c in df else 0.0
    return df


def feedback_unmatched(ctx: AnalysisContext, fb: sa.TableClause) -> int | None:
    """Feedback given in this window for a request id no interaction has (or none)."""
    if "timestamp" not in fb.c:
        return None
    ix = ctx.interactions
    known = (
        sa.select(sa.literal(1))
        .select_from(ix.table)
        .where(sa.cast(ix.req("request_id"), sa.String) == sa.cast(fb.c.request_id, sa.String))
    )
    in_window = (
        fb.c.timestamp >= sa.bindparam("window_start", type_=sa.DateTime),
        fb.c.timestamp < sa.bindparam("window_end", type_=sa.DateTime),
    )
    # Two counts, not one `IS NULL OR NOT EXISTS`: under an OR, PostgreSQL runs the
    # subquery once per feedback row (a scan of the interactions each: minutes on a
    # 1M-row day); a bare NOT EXISTS is planned as one hash anti-join.
    no_id = sa.select(sa.func.count()).select_from(fb).where(*in_window, fb.c.request_id.is_(None))
    unknown = (
        sa.select(sa.func.count()).select_from(fb).where(*in_window, fb.c.request_id.is_not(None), ~known.exists())
    )
    return int(ctx.warehouse.scalar(no_id, ctx.params)) + int(ctx.warehouse.scalar(unknown, ctx.params))


def feedback_family(ctx: AnalysisContext) -> Family:
    fam = Family()
    name = ctx.cfg.warehouse.feedback_table
    if not name:
        fam.notes.append("feedback skipped: no warehouse.feedback_table configured")
        return fam
    if not ctx.interactions.has("request_id"):
        fam.notes.append("feedback skipped: the interactions table has no request_id column to join on")
        return fam
    try:
        fb = feedback_table(ctx, name)
    except ContractError as err:
        fam.notes.append(f"feedback skipped: {err} (or unset warehouse.feedback_table)")
        return fam
    df = feedback_sums(ctx, fb)
    bad = int(df["n_bad"].sum())
    unmatched = feedback_unmatched(ctx, fb)
    fam.extra.append(MetricRecord.of("feedback_invalid_rows", bad, reason="rating_out_of_range"))
    if unmatched is not None:
        fam.extra.append(MetricRecord.of("feedback_unmatched_rows", unmatched))
    for labels, mask in segments(df):
        part = df[mask]
        requests = int(part["n_requests"].sum())
        count = int(part["n_fb"].sum())
        fam.figures.append(Figure.of("feedback_count", count, count, **labels))
        if requests:
            fam.figures.append(Figure.of("feedback_coverage", part["n_with_fb"].sum() / requests, requests, **labels))
        n_rating = int(part["n_rating"].sum())
        if n_rating:
            fam.figures.append(
                Figure.of("feedback_rating_mean", part["rating_sum"].sum() / n_rating, n_rating, **labels)
            )
        n_known = int(part["n_helpful_known"].sum())
        if n_known:
            fam.figures.append(
                Figure.of("feedback_helpful_ratio", part["n_helpful"].sum() / n_known, n_known, **labels)
            )
    total = int(df["n_fb"].sum())
    if not total:
        fam.notes.append("feedback: none for this window's requests yet")
    if bad or unmatched:
        parts = []
        if bad:
            parts.append(f"{bad:,} ratings outside 1-5 (left out of the mean)")
        if unmatched:
            parts.append(f"{unmatched:,} feedback rows given in this window for unknown request ids")
        fam.notes.append("feedback: " + "; ".join(parts))
    fam.details = {"feedback_rows": total, "invalid_ratings": bad, "unmatched": unmatched}
    return fam


# -- concept drift: each figure against its reference --------------------------------


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


# -- the analyzer ---------------------------------------------------------------------

FAMILIES = {
    "classification": classification_family,
    "generation": generation_family,
    "rag": rag_family,
    "feedback": feedback_family,
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
