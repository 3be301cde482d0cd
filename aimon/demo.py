"""Synthetic LLM interactions with injected incidents, for the demo, tests and benchmarks.

Vectorised numpy straight into Arrow, then into DuckDB through its native cursor, so
a 10M-row day takes seconds. Same seed and end date, same data.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aimon.config.sources import ERROR_TYPES
from aimon.demo_prompts import prompt_columns

MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "llama-3-70b")
MODEL_P = (0.35, 0.35, 0.2, 0.1)
NEW_MODEL = "mistral-large"  # appears on the last day, with no price: an unpriced incident
ENDPOINTS = ("chat", "summarize", "rag")
ENDPOINT_P = (0.5, 0.2, 0.3)
# "upstream_disconnect" is not in the contract's list: it counts as "other".
STATUSES = ("ok", *ERROR_TYPES, "upstream_disconnect")
TIERS = ("free", "pro", "enterprise")
LANGUAGES = ("en", "de", "fr", "es", "ja")
EMBED_DIM = 8
BASE_LATENCY = {"gpt-4o": 1.2, "gpt-4o-mini": 0.6, "claude-3-5-sonnet": 1.5, "llama-3-70b": 0.9, NEW_MODEL: 1.0}
# USD per 1M tokens (input, output, cached input): what the demo gateway logs for /chat.
DEMO_PRICES = {
    "gpt-4o": (2.50, 10.00, 1.25),
    "gpt-4o-mini": (0.15, 0.60, 0.075),
    "claude-3-5-sonnet": (3.00, 15.00, 0.30),
    "llama-3-70b": (0.60, 0.80, 0.60),
}


@dataclass(frozen=True)
class Incident:
    day_offset: int  # 0 = the last day, 1 = the day before, ...
    kind: str
    description: str


INCIDENTS = (
    Incident(0, "latency_spike", "gpt-4o on /chat is 4x slower from 13:00 to 17:00 UTC"),
    Incident(0, "cost_spike", "claude-3-5-sonnet on /summarize sends 5x the input tokens all day"),
    Incident(0, "drifted_feature", "`language` shifts: a surge of 'ja' traffic, and embeddings move"),
    Incident(0, "unpriced_model", f"a new model, {NEW_MODEL}, takes 2% of traffic with no price configured"),
    Incident(2, "error_burst", "claude-3-5-sonnet returns rate_limit_exceeded for 30% of requests 09:00-12:00 UTC"),
    Incident(
        0,
        "quality_drop",
        "gpt-4o-mini gets worse: intent accuracy on /chat ~90% -> ~60%, /summarize answers drift from the "
        "references, its users rate it a point lower; and the retriever on /rag misses more relevant documents",
    ),
)


def _lognormal(rng: np.random.Generator, median: np.ndarray | float, sigma: float, n: int) -> np.ndarray:
    return np.asarray(median) * np.exp(sigma * rng.standard_normal(n))


def _dict(codes: np.ndarray, values: tuple[str, ...]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(list(values)))


def generate_day(
    day: dt.date,
    rows: int,
    rng: np.random.Generator,
    *,
    day_offset: int,
    row_offset: int = 0,
    quality: bool = True,
    prompts: bool | None = None,
) -> pa.Table:
    """One UTC day of interactions (`prompts`: the prompt and finish_reason columns;
    None: with the quality columns). `day_offset` counts back from the last day and
    decides which incidents apply; `row_offset` keeps request ids unique across chunks."""
    n = rows
    # Diurnal traffic: more in the (UTC) afternoon.
    hour_w = 1.0 + 0.8 * np.sin((np.arange(24) - 8) / 24 * 2 * np.pi)
    hour = rng.choice(24, size=n, p=hour_w / hour_w.sum())
    micros = (hour * 3600 + rng.uniform(0, 3600, n)) * 1e6
    start_us = int(dt.datetime.combine(day, dt.time()).replace(tzinfo=dt.UTC).timestamp() * 1e6)
    ts = (start_us + micros.astype(np.int64)).astype("datetime64[us]")

    models = list(MODELS)
    model_p = np.array(MODEL_P)
    if day_offset == 0:
        models.append(NEW_MODEL)
        model_p = np.append(model_p * 0.98, 0.02)
    model = rng.choice(len(models), size=n, p=model_p)
    endpoint = rng.choice(len(ENDPOINTS), size=n, p=ENDPOINT_P)
    is_chat = endpoint == 0

    # Tokens: heavy-tailed, by endpoint.
    in_median = np.array([800.0, 3000.0, 1500.0])[endpoint]
    input_tokens = np.maximum(1, _lognormal(rng, in_median, 0.6, n)).astype(np.int64)
    output_tokens = np.maximum(1, _lognormal(rng, 250.0, 0.7, n)).astype(np.int64)
    if day_offset == 0:
        spike = (model == models.index("claude-3-5-sonnet")) & (endpoint == 1)
        input_tokens[spike] *= 5
    cached = np.where(rng.random(n) < 0.4, (input_tokens * rng.uniform(0.3, 0.9, n)).astype(np.int64), 0)

    # Latency: lognormal around a per-model median, growing with output, plus a Pareto tail.
    base = np.array([BASE_LATENCY[m] for m in models])[model]
    latency = _lognormal(rng, base * (0.5 + output_tokens / 500.0), 0.45, n)
    tail = rng.random(n) < 0.01
    latency[tail] += rng.pareto(2.5, tail.sum()) * 5
    if day_offset == 0:
        slow = (model == 0) & is_chat & (hour >= 13) & (hour < 17)
        latency[slow] *= 4

    # Status: ~1.5% errors, spread over the types; a burst on the error-burst day.
    status = np.zeros(n, dtype=np.int64)
    err = rng.random(n) < 0.015
    status[err] = rng.choice(np.arange(1, len(STATUSES)), size=err.sum())
    if day_offset == 2:
        burst = (model == models.index("claude-3-5-sonnet")) & (hour >= 9) & (hour < 12) & (rng.random(n) < 0.3)
        status[burst] = 1

    # A/B: a prompt experiment on /chat, split 50/50.
    variant = np.where(is_chat, rng.integers(0, 2, n), -1)
    # The treatment prompt asks for shorter answers: 8% fewer output tokens, and the
    # latency (which grows with the output) shrinks with them. No extra random draws.
    treat = variant == 1
    shorter = np.maximum(1, np.rint(output_tokens[treat] * 0.92)).astype(np.int64)
    latency[treat] *= (0.5 + shorter / 500.0) / (0.5 + output_tokens[treat] / 500.0)
    output_tokens[treat] = shorter

    # Features and embeddings; the language mix and the embeddings drift on the last day.
    tier = rng.choice(3, size=n, p=(0.6, 0.3, 0.1))
    lang_p = np.array([0.55, 0.15, 0.12, 0.13, 0.05])
    if day_offset == 0:
        lang_p = np.array([0.40, 0.12, 0.10, 0.10, 0.28])
    language = rng.choice(len(LANGUAGES), size=n, p=lang_p)
    emb = rng.standard_normal((n, EMBED_DIM)).astype(np.float32)
    if day_offset == 0:
        emb[:, 0] += 0.5
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), EMBED_DIM)

    # The gateway logs cost for /chat only; the rest is priced from the pricing table.
    price = np.array([DEMO_PRICES.get(m, (np.nan, np.nan, np.nan)) for m in models])[model]
    cost = ((input_tokens - cached) * price[:, 0] + cached * price[:, 2] + output_tokens * price[:, 1]) / 1e6
    cost_mask = ~is_chat | np.isnan(cost)

    # A few rows that break the contract, so the demo shows rejections.
    bad = rng.random(n) < 0.0005
    bad_kind = rng.integers(0, 3, n)
    model_mask = bad & (bad_kind == 0)
    input_tokens[bad & (bad_kind == 1)] *= -1
    latency[bad & (bad_kind == 2)] *= -1

    uid = np.minimum(rng.zipf(1.5, n), 50_000)
    ids = np.arange(row_offset, row_offset + n)
    table = pa.table(
        {
            "timestamp": pa.array(ts, pa.timestamp("us")),
            "request_id": _prefixed(f"{day:%Y%m%d}-", ids),
            "model": _masked(_dict(model, tuple(models)).cast(pa.string()), model_mask),
            "endpoint": _dict(endpoint, ENDPOINTS).cast(pa.string()),
            "status": _dict(status, STATUSES).cast(pa.string()),
            "latency_seconds": pa.array(np.round(latency, 4)),
            "input_tokens": pa.array(input_tokens),
            "output_tokens": pa.array(output_tokens),
            "cached_input_tokens": pa.array(cached),
            "cost_usd": pa.array(cost, mask=cost_mask),
            "experiment": _masked(_dict(np.zeros(n, np.int64), ("prompt-v2",)).cast(pa.string()), ~is_chat),
            "variant": _masked(_dict(np.maximum(variant, 0), ("control", "treatment")).cast(pa.string()), variant < 0),
            "user_id": _prefixed("u", uid),
            "user_tier": _dict(tier, TIERS).cast(pa.string()),
            "language": _dict(language, LANGUAGES).cast(pa.string()),
            "embedding": embedding,
        }
    )
    if quality:
        for name, col in quality_columns(day, model, endpoint, tuple(models), day_offset, row_offset).items():
            table = table.append_column(name, col)
    if quality if prompts is None else prompts:
        for name, col in prompt_columns(day, endpoint, output_tokens, row_offset).items():
            table = table.append_column(name, col)
    return table


def _masked(arr: pa.Array, mask: np.ndarray) -> pa.Array:
    """`arr` with nulls where `mask` is true."""
    return pc.if_else(pa.array(mask), pa.scalar(None, arr.type), arr)


def _prefixed(prefix: str, ids: np.ndarray) -> pa.Array:
    # numpy string ops on tens of millions of rows are slow; Arrow's are not.
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(ids), pa.string()), "")


def generate_feedback(
    interactions: pa.Table, rng: np.random.Generator, share: float = 0.1, day_offset: int | None = None
) -> pa.Table:
    n = interactions.num_rows
    pick = np.flatnonzero(rng.random(n) < share)
    ok = np.asarray(interactions.column("status").to_numpy(zero_copy_only=False)[pick] == "ok")
    rating = np.where(ok, rng.choice([3, 4, 5], size=len(pick), p=(0.2, 0.4, 0.4)), rng.choice([1, 2], size=len(pick)))
    if day_offset == QUALITY_DROP_DAY:
        # The quality drop: gpt-4o-mini's users rate it a point lower (no extra draws
        # from rng, so the rest of the data stays as it was).
        worse = np.asarray(interactions.column("model").to_numpy(zero_copy_only=False)[pick] == QUALITY_DROP_MODEL)
        rating = np.where(worse, np.maximum(1, rating - 1), rating)
    ts = interactions.column("timestamp").take(pa.array(pick)).to_numpy() + np.timedelta64(90, "s")
    return pa.table(
        {
            "request_id": interactions.column("request_id").take(pa.array(pick)),
            "timestamp": pa.array(ts, pa.timestamp("us")),
            "rating": pa.array(rating.astype(np.int64)),
            "helpful": pa.array(rating >= 4),
            "comment": pa.array([None] * len(pick), pa.string()),
        }
    )


# -- quality columns (aimon.tasks.quality) ---------------------------------------------
# Cheap at 10M rows: texts are picked from a small pool as dictionary codes and RAG id
# lists are built as Arrow lists and joined into JSON text, never per row in Python.
# They come from their own generator, seeded by the day and chunk, so adding them
# leaves every other column exactly as it was.

QUALITY_DROP_DAY = 0
QUALITY_DROP_MODEL = "gpt-4o-mini"
INTENTS = ("billing", "technical", "account", "cancel", "other")
_WORDS = (  # split into words in summary_texts()
    "the customer asked about invoice refund delayed shipment order account password reset team "
    "reported outage server latency database migration quarterly revenue growth market report "
    "contract renewal pricing plan upgrade support ticket escalated resolved engineer deployed "
    "fix release notes security patch login error mobile app users feedback survey results "
    "improved onboarding flow churn decreased meeting summary action items deadline budget "
    "approved hiring roadmap priority feature request bug crash payment failed card declined "
    "subscription cancelled policy update compliance audit data retention privacy request export "
    "download storage quota"
)
_TEMPLATES = 48


@functools.cache
def summary_texts() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(references, responses): for reference i, responses 3i, 3i+1, 3i+2 are a close
    paraphrase (2 of 14 words changed), a loose one (7 changed) and an off-topic answer."""
    g = np.random.default_rng(20261129)
    words = np.array(_WORDS.split())
    refs = [g.choice(words, 14, replace=False) for _ in range(_TEMPLATES)]
    responses = []
    for i, ref in enumerate(refs):
        for changed in (2, 7):
            r = ref.copy()
            pos = g.choice(14, changed, replace=False)
            r[pos] = g.choice(words, changed)
            responses.append(" ".join(r) + ".")
        responses.append(" ".join(refs[(i + 7) % _TEMPLATES]) + ".")
    return tuple(" ".join(r) + "." for r in refs), tuple(responses)


def quality_columns(
    day: dt.date,
    model: np.ndarray,
    endpoint: np.ndarray,
    models: tuple[str, ...],
    day_offset: int,
    row_offset: int = 0,
) -> dict[str, pa.Array]:
    """label/prediction (an intent classifier on /chat, labelled for 30% of rows),
    response/reference (every /summarize row has a response, half a reference) and
    retrieved_ids/relevant_ids as JSON text (every /rag row; 2% without relevant ids)."""
    n = len(model)
    g = np.random.default_rng([day.toordinal(), row_offset, n])
    drop = day_offset == QUALITY_DROP_DAY
    worse = (model == models.index(QUALITY_DROP_MODEL)) & drop

    chat, summarize, rag = endpoint == 0, endpoint == 1, endpoint == 2
    truth = g.choice(len(INTENTS), size=n, p=(0.3, 0.3, 0.2, 0.1, 0.1))
    right = g.random(n) < np.where(worse, 0.6, 0.9)
    pred = np.where(right, truth, (truth + g.integers(1, len(INTENTS), n)) % len(INTENTS))
    labelled = chat & (g.random(n) < 0.3)

    refs, responses = summary_texts()
    template = g.integers(0, len(refs), n)
    u = g.random(n)
    level = np.where(worse, np.digitize(u, (0.3, 0.7)), np.digitize(u, (0.75, 0.95)))
    with_ref = summarize & (g.random(n) < 0.5)

    m = int(rag.sum())
    k = 5
    retrieved = g.integers(0, 1_000_000, (m, k))
    nrel = g.integers(1, 4, m)
    nrel[g.random(m) < 0.02] = 0
    relevant = 2_000_000 + (row_offset + np.arange(m))[:, None] * 4 + np.arange(3)
    p_hit = 0.45 if drop else 0.8
    for j in range(3):
        place = (j < nrel) & (g.random(m) < p_hit)
        pos = np.minimum(g.geometric(0.5, m) - 1, k - 1)
        retrieved[place, pos[place]] = relevant[place, j]
    keep = np.arange(3) < nrel[:, None]
    where_rag = pa.array(np.cumsum(rag) - 1, mask=~rag)
    return {
        "label": _sparse(truth, INTENTS, labelled),
        "prediction": _sparse(pred, INTENTS, chat),
        "response": _sparse(template * 3 + level, responses, summarize),
        "reference": _sparse(template, refs, with_ref),
        "retrieved_ids": _json_lists(retrieved.ravel(), np.arange(0, m * k + 1, k)).take(where_rag),
        "relevant_ids": _json_lists(relevant[keep], np.concatenate([[0], np.cumsum(nrel)])).take(where_rag),
    }


def _sparse(codes: np.ndarray, values: tuple[str, ...], keep: np.ndarray) -> pa.Array:
    """values[codes] where `keep`, else null; only the kept strings are materialised."""
    return _dict(codes[keep], values).cast(pa.string()).take(pa.array(np.cumsum(keep) - 1, mask=~keep))


def _json_lists(values: np.ndarray, offsets: np.ndarray) -> pa.Array:
    """Integer id lists as JSON text ('[3, 17]'), built with Arrow string kernels."""
    lists = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pc.cast(pa.array(values), pa.string()))
    return pc.binary_join_element_wise("[", pc.binary_join(lists, ", "), "]", "")


def days_back(end: dt.date, days: int) -> Iterator[tuple[dt.date, int]]:
    for offset in range(days - 1, -1, -1):
        yield end - dt.timedelta(days=offset), offset


def seed_duckdb(
    path: str | Path,
    *,
    days: int = 14,
    rows_per_day: int = 20_000,
    seed: int = 7,
    end: dt.date | None = None,
    table: str = "interactions",
    feedback_table: str | None = "feedback",
    chunk_rows: int = 2_000_000,
    quality: bool = True,
) -> dict[str, int]:
    """(Re)create the demo tables in a DuckDB file; returns row counts."""
    end = end or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
    rng = np.random.default_rng(seed)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    counts = {table: 0}
    con = duckdb.connect(str(path))
    try:
        con.execute(f'DROP TABLE IF EXISTS "{table}"')
        if feedback_table:
            con.execute(f'DROP TABLE IF EXISTS "{feedback_table}"')
            counts[feedback_table] = 0
        for day, offset in days_back(end, days):
            done = 0
            while done < rows_per_day:
                n = min(chunk_rows, rows_per_day - done)
                chunk = generate_day(day, n, rng, day_offset=offset, row_offset=done, quality=quality)
                _append(con, table, chunk)
                if feedback_table:
                    fb = generate_feedback(chunk, rng, day_offset=offset)
                    _append(con, feedback_table, fb)
                    counts[feedback_table] += fb.num_rows
                counts[table] += n
                done += n
    finally:
        con.close()
    return counts


def _append(con: object, table: str, data: pa.Table) -> None:
    con.register("_chunk", data)  # type: ignore[attr-defined]
    try:
        exists = con.execute(  # type: ignore[attr-defined]
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
        ).fetchone()[0]
        if exists:
            con.execute(f'INSERT INTO "{table}" SELECT * FROM _chunk')  # type: ignore[attr-defined]
        else:
            con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM _chunk')  # type: ignore[attr-defined]
    finally:
        con.unregister("_chunk")  # type: ignore[attr-defined]
