"""Generation figures: ROUGE-1/2/L and corpus BLEU of responses against references,
with bootstrap 95% intervals. (response, reference) pairs are read as Arrow; above
`quality.sample_cap` pairs per model a seeded random sample is scored (rouge-score with
stemming, sacrebleu's corpus BLEU). Roll-ups over models weight each scored pair by its
model's population / sample size (a stratified estimate).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import unicodedata
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from aimon.records import MetricRecord
from aimon.tasks.contract import valid_rows
from aimon.tasks.orchestration.context import AnalysisContext
from aimon.tasks.quality.figures import Family, Figure
from aimon.tasks.quality.reads import segment_columns, segments
from aimon.windows import Window

ROUGE_VARIANTS = ("rouge1", "rouge2", "rougeL")


# One Han, Hiragana or Katakana character (scripts written without spaces), or a run of
# letters and digits of any other script.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_UNICODE_TOKEN = re.compile(f"[{_CJK}]|(?:(?![{_CJK}])[^\\W_])+")


class UnicodeTokenizer:
    """ROUGE tokens for any script (`quality.rouge_tokenizer: unicode`): NFKC, case-fold,
    letters and digits of any script, one token per Han/kana character; Latin words
    longer than 3 letters Porter-stemmed, as rouge-score's default tokenizer does."""

    def __init__(self) -> None:
        from nltk.stem import porter  # noqa: PLC0415  lazy, as rouge_score

        self._stem = porter.PorterStemmer().stem

    def tokenize(self, text: str) -> list[str]:
        tokens = _UNICODE_TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())
        return [self._stem(t) if len(t) > 3 and t.isascii() and t.isalpha() else t for t in tokens]


def rouge_fmeasures(responses: Sequence[str], references: Sequence[str], tokenizer: str = "default") -> np.ndarray:
    """(n, 3) ROUGE-1/2/L F-measures of each response against its reference
    (rouge-score, Porter stemming on; `tokenizer` "unicode": UnicodeTokenizer).
    Identical pairs are scored once."""
    from rouge_score import rouge_scorer  # noqa: PLC0415  lazy: rouge_score (with nltk) costs ~1 s to import

    extra = {"tokenizer": UnicodeTokenizer()} if tokenizer == "unicode" else {}
    scorer = rouge_scorer.RougeScorer(list(ROUGE_VARIANTS), use_stemmer=True, **extra)
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
    from sacrebleu.metrics import BLEU  # noqa: PLC0415  lazy: only needed when there are pairs to score

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
    rouge = rouge_fmeasures(responses, references, q.rouge_tokenizer)
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
