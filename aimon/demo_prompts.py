"""The demo's prompt and finish_reason columns (aimon.demo.generate_day), kept apart
from the rest of the synthetic interactions: vectorised Arrow string building, so a
10M-row day's prompts take seconds."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Prompts (cost optimisation's cache potential): /summarize asks for popular documents
# again and again (Zipf), /chat is mostly unique questions plus a few FAQs typed with
# stray whitespace, /rag sends one of a few long knowledge-base headers before a
# unique question (a cacheable prefix, no exact repeats).
_FAQS = (
    "What are your opening hours?",
    "How do I reset my password?",
    "Can I change my plan?",
    "Where is my invoice?",
    "How do I cancel my subscription?",
    "Do you offer refunds?",
    "How do I add a team member?",
    "Is there an API rate limit?",
)
_KB_HEADERS = tuple(
    f"You answer from the knowledge base section {k} only. Cite the section and the paragraph for every "
    f"claim, say 'not in the knowledge base' when it is not there, never guess, keep answers under 120 "
    f"words, and use the customer's language. Section {k}: product {k % 7}, release notes and known issues."
    for k in range(20)
)
MAX_OUTPUT_TOKENS = 1000  # outputs this long end with finish_reason "length"


def prompt_columns(
    day: dt.date, endpoint: np.ndarray, output_tokens: np.ndarray, row_offset: int = 0
) -> dict[str, pa.Array]:
    """`prompt` per endpoint (see above) and `finish_reason` ("length" at
    MAX_OUTPUT_TOKENS, else "stop"); own random stream, so the other columns keep theirs."""
    n = len(endpoint)
    g = np.random.default_rng([day.toordinal(), row_offset, n, 1])
    ids = pc.cast(pa.array(np.arange(row_offset, row_offset + n) + day.toordinal() * 10_000_000), pa.string())
    docs = pc.cast(pa.array(np.minimum(g.zipf(1.1, n), 10**9)), pa.string())
    summarize = pc.binary_join_element_wise("Summarize document #", docs, " in five bullet points.", "")
    faq = g.integers(0, len(_FAQS), n)
    spaced = pa.array([f"  {q.replace(' ', '  ')}\n" for q in _FAQS]).take(pa.array(faq))
    faqs = pc.if_else(pa.array(g.random(n) < 0.5), pa.array(_FAQS).take(pa.array(faq)), spaced)
    questions = pc.binary_join_element_wise("Question ", ids, ": how do I configure feature ", docs, "?", "")
    chat = pc.if_else(pa.array(g.random(n) < 0.15), faqs, questions)
    header = pa.array(_KB_HEADERS).take(pa.array(g.integers(0, len(_KB_HEADERS), n)))
    rag = pc.binary_join_element_wise(header, " Question ", ids, "?", "")
    prompt = pc.if_else(pa.array(endpoint == 0), chat, pc.if_else(pa.array(endpoint == 1), summarize, rag))
    finish = np.where(output_tokens >= MAX_OUTPUT_TOKENS, 1, 0)
    reasons = pa.DictionaryArray.from_arrays(pa.array(finish.astype(np.int32)), pa.array(["stop", "length"]))
    return {"prompt": prompt, "finish_reason": reasons.cast(pa.string())}
