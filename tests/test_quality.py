"""Quality figures against independent references on fixed data: scikit-learn on the
raw rows, rouge-score and sacrebleu called directly, hand-computed retrieval cases,
pandas for feedback; bad input counted; concept drift against stored history; the
demo's quality drop."""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from rich.console import Console

from aimon.cli.summary import print_summary
from aimon.config import parse_config
from aimon.errors import ConfigError
from aimon.records import ALL, MetricRecord
from aimon.store.metrics import Store
from aimon.tasks.orchestration.run import open_window
from aimon.tasks.quality.analyzer import analyze_quality
from aimon.tasks.quality.classification import classification_family, label_provisional
from aimon.tasks.quality.concept_drift import TRACKED
from aimon.tasks.quality.feedback import feedback_family
from aimon.tasks.quality.generation import bleu_from_statistics, bleu_statistics, generation_family, sample_pairs
from aimon.tasks.quality.rag import rag_family, rag_scores, rank_hits, retrieval_metrics
from aimon.tasks.quality.rag_ids import id_lists, parse_id_lists
from aimon.windows import daily_window
from tests.conftest import DAY, make_config, write_sqlalchemy

TS = pd.Timestamp(DAY) + pd.Timedelta(hours=10)


def write_arrow(path: Path, tables: dict[str, pa.Table]) -> str:
    con = duckdb.connect(str(path))
    try:
        for name, t in tables.items():
            con.register("_t", t)
            con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _t')
            con.unregister("_t")
    finally:
        con.close()
    return f"duckdb:///{path}"


def base_rows(n: int, models: list[str] | None = None, **cols: Any) -> dict[str, Any]:
    models = models or ["m"] * n
    return {
        "timestamp": [TS + pd.Timedelta(seconds=i) for i in range(n)],
        "model": models,
        "status": ["ok"] * n,
        "request_id": [f"q{i}" for i in range(n)],
        **cols,
    }


def ctx_for(url: str, **overrides: Any):
    cfg = make_config(url, budgets=[], **overrides)
    store = Store(cfg)
    store.ensure()
    return open_window(cfg, daily_window(DAY), store)


def figs(records) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(r.metric, r.labels): r.value for r in records}


def get(records, name: str, /, **labels: Any) -> float:
    want = tuple(sorted((k, str(v)) for k, v in labels.items()))
    found = figs(records)
    assert (name, want) in found, f"{name}{dict(want)} not in {sorted(k for k in found if k[0] == name)}"
    return found[(name, want)]


# -- classification -----------------------------------------------------------------


@pytest.mark.parametrize("backend", ["duckdb", "sqlite"])
def test_classification_equals_sklearn_on_the_raw_rows(tmp_path: Path, backend: str) -> None:
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    rng = np.random.default_rng(11)
    n = 600
    classes = np.array(["billing", "tech", "account", "rare"])
    label = rng.choice(classes, n, p=[0.4, 0.3, 0.25, 0.05])
    pred = np.where(rng.random(n) < 0.7, label, rng.choice(classes[:3], n))  # "rare" is never predicted
    models = rng.choice(["a", "b"], n)
    df = pd.DataFrame(base_rows(n, list(models), label=label, prediction=pred))
    # Rows awaiting a label, a row without prediction, a rejected row, a row outside the window.
    extra = pd.DataFrame(
        base_rows(
            6,
            ["a", "a", None, "a", "b", "b"],
            label=[None, "tech", "tech", "tech", "", "tech"],
            prediction=["tech", None, "x", "x", "tech", " "],
        )
    )
    extra.loc[3, "timestamp"] = pd.Timestamp(DAY) - pd.Timedelta(hours=1)
    df = pd.concat([df, extra], ignore_index=True)
    if backend == "duckdb":
        url = write_arrow(tmp_path / "c.duckdb", {"interactions": pa.Table.from_pandas(df, preserve_index=False)})
    else:
        url = f"sqlite:///{tmp_path / 'c.sqlite'}"
        write_sqlalchemy(url, df, "interactions")
    fam = classification_family(ctx_for(url))
    got = {(f.metric, f.labels): (f.value, f.n) for f in fam.figures}
    for model in ("a", "b", ALL):
        sel = slice(None) if model == ALL else models == model
        y, p = label[sel], pred[sel]
        want = {("model_accuracy", None): accuracy_score(y, p)}
        for avg in ("weighted", "macro"):
            pr, rc, f1, _ = precision_recall_fscore_support(y, p, average=avg, zero_division=0)
            want |= {("model_precision", avg): pr, ("model_recall", avg): rc, ("model_f1", avg): f1}
        for (metric, avg), value in want.items():
            labels = {"model": model, **({"average": avg} if avg else {})}
            v, size = got[(metric, tuple(sorted(labels.items())))]
            assert v == pytest.approx(value, rel=1e-12), (metric, labels)
            assert size == len(y)
    assert fam.details == {"labelled": n, "awaiting_label": 1, "no_prediction": 1, "empty": 2}
    assert any("1 await a label" in note for note in fam.notes)
    extra_recs = figs(fam.extra)
    coverage_a = extra_recs[("quality_label_coverage", (("model", "a"),))]
    assert coverage_a == pytest.approx((models == "a").sum() / ((models == "a").sum() + 1))


def test_no_labels_is_a_note_and_label_delay_marks_the_window_provisional(tmp_path: Path) -> None:
    df = pd.DataFrame(base_rows(3, label=[None] * 3, prediction=["x", "y", "x"]))
    url = write_arrow(tmp_path / "n.duckdb", {"interactions": pa.Table.from_pandas(df, preserve_index=False)})
    fam = classification_family(ctx_for(url))
    assert not fam.figures
    assert "classification: no labels in this window (3 predictions await a label)" in fam.notes
    w = daily_window(DAY)
    assert label_provisional(w, 3, now=w.end + dt.timedelta(days=2))
    assert not label_provisional(w, 3, now=w.end + dt.timedelta(days=3))
    assert not label_provisional(w, 0, now=w.end)
    # A window inside the delay says so, and how to recompute it.
    fam = classification_family(ctx_for(url, quality={"label_delay_days": 36500}))
    assert figs(fam.extra)[("quality_labels_provisional", ())] == 1
    assert any("provisional" in note and "aimon run --date" in note for note in fam.notes)


# -- generation -------------------------------------------------------------------------

RESPONSES = [
    "The cat sat on the mat.",
    "A quick brown fox jumps over the lazy dog",
    "Revenue grew 12% in the third quarter, driven by subscriptions.",
    "",  # an empty answer: scored, and 0
    "Running runners ran to the running track",
    "The meeting moved to Thursday at noon.",
    "Users reported login errors after the release.",
    "The cat sat on the mat.",  # a duplicate pair: scored once, counted twice
]
REFERENCES = [
    "The cat is sitting on the mat.",
    "The quick brown fox jumped over the lazy dogs.",
    "Third-quarter revenue rose 12 percent on subscription growth.",
    "Nothing was said.",
    "The runner runs on the track.",
    "The meeting is on Thursday at 12.",
    "After the release, users saw errors when logging in.",
    "The cat is sitting on the mat.",
]


def generation_url(tmp_path: Path, models: list[str] | None = None, copies: int = 1) -> str:
    n = len(RESPONSES) * copies
    df = pd.DataFrame(
        base_rows(n, models, response=RESPONSES * copies, reference=REFERENCES * copies, endpoint="summarize")
    )
    extra = pd.DataFrame(
        base_rows(3, None, response=[None, "x", "y"], reference=["a ref", "   ", None], endpoint="summarize")
    )
    extra["request_id"] = ["e0", "e1", "e2"]
    df = pd.concat([df, extra], ignore_index=True)
    return write_arrow(tmp_path / "g.duckdb", {"interactions": pa.Table.from_pandas(df, preserve_index=False)})


def test_rouge_and_bleu_equal_rouge_score_and_sacrebleu(tmp_path: Path) -> None:
    import sacrebleu
    from rouge_score import rouge_scorer

    fam = generation_family(ctx_for(generation_url(tmp_path)))
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    scores = [scorer.score(ref, resp) for resp, ref in zip(RESPONSES, REFERENCES, strict=True)]
    recs = [MetricRecord(f.metric, f.labels, f.value) for f in fam.figures]
    for model in ("m", ALL):
        for v in ("rouge1", "rouge2", "rougeL"):
            want = float(np.mean([s[v].fmeasure for s in scores]))
            assert get(recs, "generation_rouge", model=model, variant=v) == pytest.approx(want, rel=1e-12)
        bleu = sacrebleu.corpus_bleu(RESPONSES, [REFERENCES]).score
        assert get(recs, "generation_bleu", model=model) == pytest.approx(bleu, rel=1e-9)
    assert {f.n for f in fam.figures} == {len(RESPONSES)}
    extra = figs(fam.extra)
    # The empty answer is scored; a blank reference and a missing response are left out, counted.
    assert extra[("generation_empty_responses", ())] == 1
    assert extra[("quality_excluded_rows", (("family", "generation"), ("reason", "empty_reference")))] == 1
    assert extra[("quality_excluded_rows", (("family", "generation"), ("reason", "missing_response")))] == 1
    for v in ("rouge1", "rougeL"):
        lo = extra[("generation_rouge_ci_low", (("model", "m"), ("variant", v)))]
        hi = extra[("generation_rouge_ci_high", (("model", "m"), ("variant", v)))]
        assert lo < get(recs, "generation_rouge", model="m", variant=v) < hi


def test_rouge_unicode_tokenizer_scores_other_scripts_and_leaves_english_as_rouge_score() -> None:
    """rouge-score keeps only a-z and 0-9: identical Japanese or Greek texts score 0.
    `quality.rouge_tokenizer: unicode` scores them 1 (Han/kana a token per character);
    on English its figures are rouge-score's own, stemming included."""
    from rouge_score import rouge_scorer

    from aimon.tasks.quality.generation import rouge_fmeasures

    other = ["東京は今日晴れです", "καλημέρα κόσμε, τι κάνεις;", "Привет, как дела?"]
    assert (rouge_fmeasures(other, other) == 0).all()
    assert (rouge_fmeasures(other, other, "unicode") == 1).all()
    half = rouge_fmeasures(["東京は晴れ"], ["京都は晴れ"], "unicode")[0]
    assert half[0] == pytest.approx(0.8) and half[1] == pytest.approx(0.5)  # 4 of 5 chars, 2 of 4 bigrams
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    want = [[s[v].fmeasure for v in ("rouge1", "rouge2", "rougeL")] for s in map(scorer.score, REFERENCES, RESPONSES)]
    assert rouge_fmeasures(RESPONSES, REFERENCES, "unicode") == pytest.approx(np.array(want), rel=1e-12)


def test_generation_per_experiment_variant_labels_the_arm_experiment_variant(tmp_path: Path) -> None:
    import sacrebleu

    n = len(RESPONSES)
    df = pd.DataFrame(
        base_rows(n, response=RESPONSES, reference=REFERENCES, experiment=["exp"] * n, variant=["a", "b"] * (n // 2))
    )
    url = write_arrow(tmp_path / "v.duckdb", {"interactions": pa.Table.from_pandas(df, preserve_index=False)})
    fam = generation_family(ctx_for(url))
    recs = [MetricRecord(f.metric, f.labels, f.value) for f in fam.figures]
    arm_b = slice(1, None, 2)
    want = sacrebleu.corpus_bleu(RESPONSES[arm_b], [REFERENCES[arm_b]]).score
    assert get(recs, "generation_bleu", model=ALL, experiment="exp", experiment_variant="b") == pytest.approx(want)
    assert get(recs, "generation_rouge", model=ALL, experiment="exp", experiment_variant="a", variant="rouge1") > 0


def test_bleu_of_weighted_statistics_equals_sacrebleu_on_the_expanded_corpus() -> None:
    import sacrebleu

    stats = bleu_statistics(RESPONSES[:3], REFERENCES[:3])
    # Weight 2 on the first pair is the corpus with that pair twice.
    value = bleu_from_statistics((stats * np.array([[2.0], [1.0], [1.0]])).sum(0))
    want = sacrebleu.corpus_bleu([RESPONSES[0], *RESPONSES[:3]], [[REFERENCES[0], *REFERENCES[:3]]]).score
    assert value == pytest.approx(want, rel=1e-9)


def test_above_the_cap_a_seeded_sample_is_scored_with_its_size_and_interval(tmp_path: Path) -> None:
    url = generation_url(tmp_path, models=["big"] * 40 * len(RESPONSES) + [], copies=40)
    ctx = ctx_for(url, quality={"sample_cap": 50, "bootstrap_iterations": 300})
    first = generation_family(ctx)
    again = generation_family(ctx)
    assert [f.value for f in first.figures] == [f.value for f in again.figures]  # a rerun scores the same rows
    rouge_l = next(f for f in first.figures if f.metric == "generation_rouge" and ("variant", "rougeL") in f.labels)
    assert rouge_l.n == 50
    extra = figs(first.extra)
    assert extra[("quality_population_size", (("metric", "generation"), ("model", "big")))] == 40 * len(RESPONSES)
    lo = extra[("generation_rouge_ci_low", (("model", "big"), ("variant", "rougeL")))]
    hi = extra[("generation_rouge_ci_high", (("model", "big"), ("variant", "rougeL")))]
    assert lo < rouge_l.value < hi
    assert any("big 50 of 320 pairs" in n for n in first.notes)
    other = generation_family(ctx_for(url, quality={"sample_cap": 50, "seed": 99}))
    assert [f.value for f in other.figures] != [f.value for f in first.figures]


def test_sampled_rows_carry_population_weights() -> None:
    df = pd.DataFrame({"g_model": ["a"] * 10 + ["b"] * 3, "x": range(13)})
    sample, pops = sample_pairs(df, 4, 0, daily_window(DAY))
    assert pops == {"a": 10, "b": 3}
    assert sample.groupby("g_model").size().to_dict() == {"a": 4, "b": 3}
    assert sample.loc[sample.g_model == "a", "weight"].tolist() == [2.5] * 4
    assert sample.loc[sample.g_model == "b", "weight"].tolist() == [1.0] * 3


# -- RAG ---------------------------------------------------------------------------------

L2, L3, L6 = math.log2(2), math.log2(3), math.log2(6)
# (retrieved, relevant) and the hand-computed figures at k = 1, 3, 5 and the reciprocal rank.
CASES = [
    # relevant at ranks 2 and 5
    (["a", "b", "c", "d", "e"], ["b", "e"]),
    # fewer than k retrieved: empty slots are misses for precision
    (["x"], ["x"]),
    # a duplicate retrieved id counts once, at its first rank; the ranks close up
    (["a", "a", "b"], ["b"]),
    # duplicate relevant ids are one id; nothing relevant retrieved
    (["p", "q"], ["c", "c"]),
]
WANT = {
    ("rag_precision_at_k", 1): [0, 1, 0, 0],
    ("rag_precision_at_k", 3): [1 / 3, 1 / 3, 1 / 3, 0],
    ("rag_precision_at_k", 5): [2 / 5, 1 / 5, 1 / 5, 0],
    ("rag_recall_at_k", 1): [0, 1, 0, 0],
    ("rag_recall_at_k", 3): [1 / 2, 1, 1, 0],
    ("rag_recall_at_k", 5): [1, 1, 1, 0],
    ("rag_hit_rate_at_k", 1): [0, 1, 0, 0],
    ("rag_hit_rate_at_k", 3): [1, 1, 1, 0],
    ("rag_hit_rate_at_k", 5): [1, 1, 1, 0],
    ("rag_ndcg_at_k", 1): [0, 1, 0, 0],
    ("rag_ndcg_at_k", 3): [(1 / L3) / (1 + 1 / L3), 1, 1 / L3, 0],
    ("rag_ndcg_at_k", 5): [(1 / L3 + 1 / L6) / (1 / L2 + 1 / L3), 1, 1 / L3, 0],
    ("rag_mrr", None): [1 / 2, 1, 1 / 2, 0],
}


def test_rag_scores_equal_hand_computed_cases() -> None:
    got = rag_scores([c[0] for c in CASES], [c[1] for c in CASES], (1, 3, 5))
    assert set(got) == set(WANT)
    for key, want in WANT.items():
        np.testing.assert_allclose(got[key], want, rtol=1e-12, err_msg=str(key))


def _rag_table(fmt: str) -> pa.Table:
    rows = [*CASES, (["z"], []), (["z"], ["z"])]
    n = len(rows)
    if fmt == "native":
        ret: pa.Array = pa.array([r for r, _ in rows], pa.list_(pa.string()))
        rel: pa.Array = pa.array([r for _, r in rows], pa.list_(pa.string()))
    elif fmt == "json":
        import json

        ret = pa.array([json.dumps(r) for r, _ in rows])
        rel = pa.array([json.dumps(r) for _, r in rows])
    else:
        ret = pa.array(["|".join(r) for r, _ in rows])
        rel = pa.array([" | ".join(r) for _, r in rows])
    # The last case's retrieved ids are missing (null): left out and counted.
    ret = pa.array([*ret.to_pylist()[:-1], None], ret.type)
    t = pa.Table.from_pandas(pd.DataFrame(base_rows(n, endpoint="rag")), preserve_index=False)
    return t.append_column("retrieved_ids", ret).append_column("relevant_ids", rel)


@pytest.mark.parametrize("fmt", ["native", "json", "delimited"])
def test_rag_figures_from_native_lists_json_and_delimited_text(tmp_path: Path, fmt: str) -> None:
    url = write_arrow(tmp_path / "r.duckdb", {"interactions": _rag_table(fmt)})
    fam = rag_family(ctx_for(url, quality={"k": [5, 1, 3], "id_delimiter": "|"}))
    got = {(f.metric, dict(f.labels).get("k")): f for f in fam.figures}
    for (metric, k), want in WANT.items():
        f = got[(metric, None if k is None else str(k))]
        assert f.value == pytest.approx(float(np.mean(want)), rel=1e-12), (metric, k)
        assert f.n == len(CASES)
    extra = figs(fam.extra)
    assert extra[("rag_excluded_queries", (("reason", "no_relevant_ids"),))] == 1
    assert extra[("rag_excluded_queries", (("reason", "missing_retrieved_ids"),))] == 1
    assert extra[("rag_duplicate_id_queries", ())] == 1
    assert any("1 queries with no relevant ids" in n for n in fam.notes)


def test_unreadable_id_lists_are_counted_not_fatal(tmp_path: Path) -> None:
    ret = ["[1, 2", '["a", "b"]', '["a"]', '[["nested"]]', "[1, 2]"]
    rel = ['["a"]', "{not json", '{"a": 1}', '["a"]', "[2]"]
    t = pa.Table.from_pandas(pd.DataFrame(base_rows(5)), preserve_index=False)
    t = t.append_column("retrieved_ids", pa.array(ret)).append_column("relevant_ids", pa.array(rel))
    url = write_arrow(tmp_path / "bad.duckdb", {"interactions": t})
    fam = rag_family(ctx_for(url, quality={"id_format": "json"}))
    extra = figs(fam.extra)
    assert extra[("rag_excluded_queries", (("reason", "invalid_relevant_ids"),))] == 2
    assert extra[("rag_excluded_queries", (("reason", "invalid_retrieved_ids"),))] == 2
    mrr = next(f for f in fam.figures if f.metric == "rag_mrr")
    assert (mrr.value, mrr.n) == (0.5, 1)  # only "[1, 2]" vs "[2]": JSON numbers and text ids compare as text
    assert any("invalid retrieved ids" in n for n in fam.notes)
    # "json" refuses a delimited list; "auto" reads it.
    ids, bad = parse_id_lists(["a,b", "[1]", "", None], "json")
    assert bad.tolist() == [True, False, True, False]
    ids, bad = parse_id_lists(["a, b,", "[1]", "", None], "auto")
    assert ids == [["a", "b"], ["1"], [], None] and not bad.any()


# -- feedback -----------------------------------------------------------------------------


def test_feedback_equals_a_pandas_computation(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 400
    models = rng.choice(["a", "b"], n)
    ix = pd.DataFrame(base_rows(n, list(models)))
    ix.loc[0, "model"] = None  # rejected: its feedback must not count
    before = pd.DataFrame(base_rows(5, ["a"] * 5))
    before["timestamp"] = pd.Timestamp(DAY) - pd.Timedelta(hours=3)
    before["request_id"] = [f"old{i}" for i in range(5)]
    ix = pd.concat([ix, before], ignore_index=True)
    picks = rng.choice(ix["request_id"], 300)  # some requests get two or three
    fb = pd.DataFrame(
        {
            "request_id": [*list(picks), "ghost1", "ghost2", None],
            "timestamp": [TS + pd.Timedelta(minutes=5)] * 303,
            "rating": [
                *list(rng.choice([1, 2, 3, 4, 5, 0, 7], 300, p=[0.1, 0.1, 0.2, 0.3, 0.26, 0.02, 0.02])),
                5,
                5,
                5,
            ],
            "helpful": [*list(rng.choice([True, False, None], 300)), True, True, True],
            "comment": [None] * 303,
        }
    )
    fb["helpful"] = fb["helpful"].astype("boolean")
    url = write_arrow(
        tmp_path / "f.duckdb",
        {"interactions": pa.Table.from_pandas(ix, preserve_index=False), "feedback": pa.Table.from_pandas(fb)},
    )
    fam = feedback_family(ctx_for(url, warehouse={"url": url, "feedback_table": "feedback"}))
    recs = [MetricRecord(f.metric, f.labels, f.value) for f in fam.figures]

    w = daily_window(DAY)
    reqs = ix[(ix["timestamp"] >= w.start) & (ix["timestamp"] < w.end) & ix["model"].notna()]
    joined = reqs.merge(fb, on="request_id", how="inner", suffixes=("", "_fb"))
    for model in ("a", "b", ALL):
        r = reqs if model == ALL else reqs[reqs["model"] == model]
        j = joined if model == ALL else joined[joined["model"] == model]
        ok = j[j["rating"].between(1, 5)]
        assert get(recs, "feedback_count", model=model) == len(j)
        assert get(recs, "feedback_coverage", model=model) == pytest.approx(j["request_id"].nunique() / len(r))
        assert get(recs, "feedback_rating_mean", model=model) == pytest.approx(ok["rating"].mean())
        assert get(recs, "feedback_helpful_ratio", model=model) == pytest.approx(j["helpful"].dropna().mean())
    extra = figs(fam.extra)
    assert extra[("feedback_invalid_rows", (("reason", "rating_out_of_range"),))] == int(
        (~joined["rating"].between(1, 5)).sum()
    )
    # Two feedback rows for unknown request ids and one without any, given in the window.
    assert extra[("feedback_unmatched_rows", ())] == 3
    assert any("ratings outside 1-5" in n for n in fam.notes)
    assert any("3 feedback rows given in this window for unknown request ids" in n for n in fam.notes)


def test_a_configured_feedback_table_that_is_missing_is_named_in_a_note(tmp_path: Path) -> None:
    url = write_arrow(tmp_path / "x.duckdb", {"interactions": pa.Table.from_pandas(pd.DataFrame(base_rows(2)))})
    fam = feedback_family(ctx_for(url, warehouse={"url": url, "feedback_table": "fedback"}))
    assert not fam.figures
    assert any("'fedback' not found" in n and "warehouse.feedback_table" in n for n in fam.notes)


# -- concept drift --------------------------------------------------------------------------


def test_change_against_the_median_of_the_previous_windows_is_a_figure_and_a_note(tmp_path: Path) -> None:
    df = pd.DataFrame(base_rows(100, label=["x"] * 100, prediction=["x"] * 66 + ["y"] * 34))
    url = write_arrow(tmp_path / "d.duckdb", {"interactions": pa.Table.from_pandas(df, preserve_index=False)})
    ctx = ctx_for(url)
    # Seven earlier days of accuracy: median 0.75; one day older than the reference must not count.
    for i, v in enumerate([0.7, 0.75, 0.8, 0.75, 0.72, 0.78, 0.9, 0.1]):
        day = DAY - dt.timedelta(days=i + 1)
        ctx.store.replace_window(daily_window(day), [MetricRecord.of("model_accuracy", v, model="m")], "r")
    result = analyze_quality(ctx)
    assert get(result.records, "model_accuracy", model="m") == pytest.approx(0.66)
    assert get(result.records, "quality_reference_value", metric="model_accuracy", model="m") == pytest.approx(0.75)
    assert get(result.records, "quality_change_ratio", metric="model_accuracy", model="m") == pytest.approx(-0.12)
    assert get(result.records, "quality_sample_size", metric="model_accuracy", model="m") == 100
    assert "accuracy (model=m) fell 12% below its 7-day baseline (0.66 vs median 0.75 of 7 windows; n=100)" in (
        result.notes
    )
    # A fixed baseline period instead: only its windows count (end date included).
    baseline = {"start": str(DAY - dt.timedelta(days=8)), "end": str(DAY - dt.timedelta(days=7))}
    result = analyze_quality(ctx_for(url, reference={"baseline": baseline}))
    assert get(result.records, "quality_reference_value", metric="model_accuracy", model="m") == pytest.approx(0.5)
    assert get(result.records, "quality_change_ratio", metric="model_accuracy", model="m") == pytest.approx(0.32)
    assert not any("fell" in n for n in result.notes)  # a rise is a figure, not a warning


def test_an_empty_window_yields_notes_not_errors(tmp_path: Path) -> None:
    df = pd.DataFrame(base_rows(2, label=["x", "y"], prediction=["x", "x"], reference=["r", "r"], response=["r", "s"]))
    df["timestamp"] = pd.Timestamp(DAY) - pd.Timedelta(days=3)
    url = write_arrow(tmp_path / "e.duckdb", {"interactions": pa.Table.from_pandas(df, preserve_index=False)})
    result = analyze_quality(ctx_for(url))
    assert not [r for r in result.records if r.metric in TRACKED]
    assert "classification: no labels in this window" in result.notes
    assert "generation: no (response, reference) pairs in this window" in result.notes
    assert "RAG skipped: the table has no retrieved_ids or relevant_ids column" in result.notes
    assert "feedback skipped: no warehouse.feedback_table configured" in result.notes


def test_quality_config_is_validated_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'quality\.sample_size'"):
        parse_config({"warehouse": {}, "quality": {"sample_size": 5}})
    with pytest.raises(ConfigError, match=r"'quality\.k'"):
        parse_config({"warehouse": {}, "quality": {"k": [0, 5]}})
    cfg = parse_config({"warehouse": {}, "quality": {"k": [10, 5, 5]}})
    assert cfg.quality.k == (5, 10)


# -- the demo's quality drop ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_demo_quality_drop_shows_in_figures_and_summary(tmp_path: Path) -> None:
    import yaml

    from aimon.demo import INCIDENTS, QUALITY_DROP_MODEL, seed_duckdb
    from aimon.flows.monitor import monitor_window

    assert any(i.kind == "quality_drop" and i.day_offset == 0 for i in INCIDENTS)
    db = tmp_path / "demo.duckdb"
    seed_duckdb(db, days=8, rows_per_day=6000, seed=7, end=DAY)
    url = f"duckdb:///{db}"
    cfg = make_config(url, warehouse={"url": url, "feedback_table": "feedback"}, budgets=[])
    store = Store(cfg)
    store.ensure()
    for offset in range(7, 0, -1):  # the reference: seven ordinary days
        window = daily_window(DAY - dt.timedelta(days=offset))
        store.replace_window(window, analyze_quality(open_window(cfg, window, store)).records, "history")
    path = tmp_path / "monitoring.yaml"
    path.write_text(
        yaml.safe_dump({"warehouse": {"url": url, "interactions_table": "interactions", "feedback_table": "feedback"}})
    )
    summary = monitor_window(granularity="daily", window_start=DAY.isoformat(), config_path=str(path))
    assert summary.status == "success", summary.outcomes
    recs = summary.records

    drop = QUALITY_DROP_MODEL
    assert get(recs, "model_accuracy", model=drop) < 0.7 < 0.85 < get(recs, "model_accuracy", model="gpt-4o")
    for metric, labels in (
        ("model_f1", {"model": drop, "average": "macro"}),
        ("generation_rouge", {"model": drop, "variant": "rougeL"}),
        ("generation_bleu", {"model": drop}),
        ("feedback_rating_mean", {"model": drop}),
        ("rag_recall_at_k", {"k": 10}),
        ("rag_mrr", {}),
    ):
        assert get(recs, "quality_change_ratio", metric=metric, **labels) < -0.15, (metric, labels)
    assert get(recs, "quality_change_ratio", metric="model_accuracy", model="gpt-4o") > -0.05
    fell = [n for n in summary.notes if " fell " in n]
    assert any(n.startswith(f"macro F1 (model={drop}) fell") and "7-day baseline" in n for n in fell), fell
    assert any(n.startswith("recall@10 fell") for n in fell), fell
    assert len(fell) <= 9  # the eight largest falls, then "... and N more"
    # The printed summary shows the drop next to the figures, and names it.
    console = Console(record=True, width=220)
    print_summary(summary, console)
    text = console.export_text()
    assert "quality by model (change vs reference)" in text
    table = text[text.index("quality by model") :]
    row = next(line for line in table.splitlines() if line.strip("│ ").startswith(drop))
    assert len(re.findall(r"\(-\d+%\)", row)) >= 4, row  # accuracy, F1, ROUGE-L, BLEU, rating, helpful
    assert re.search(r"retrieval: recall@10 0\.\d+ \(-\d+%\)", text)
    assert f"macro F1 (model={drop}) fell" in text
    assert not any("model=gpt-4o)" in n or "claude" in n or "llama" in n for n in fell), fell


def test_column_path_equals_the_row_by_row_definition_on_random_lists() -> None:
    """id_lists + rank_hits (Arrow and pandas, what the analyzer runs) against
    parse_id_lists + rag_scores (plain Python, the definition) on random lists with
    duplicates, short lists, and every text form."""
    import json

    rng = np.random.default_rng(3)
    ret_lists = [list(rng.integers(0, 12, rng.integers(0, 8))) for _ in range(500)]
    rel_lists = [list(rng.integers(0, 12, rng.integers(1, 4))) for _ in range(500)]
    forms = [
        lambda ids: json.dumps([int(x) for x in ids]),
        lambda ids: json.dumps([f"d{x}" for x in ids]),
        lambda ids: ", ".join(f"d{x}" for x in ids),
        lambda ids: json.dumps([f"d,{x}" for x in ids]),  # a comma inside an id: the json.loads path
    ]
    ret_text = [forms[i % 4](r) for i, r in enumerate(ret_lists)]
    rel_text = [forms[i % 4](r) for i, r in enumerate(rel_lists)]
    ret_text[7], rel_text[9] = "[1, 2", '["a", {"b": 1}]'
    fast_ret, fast_rel = id_lists(pa.array(ret_text)), id_lists(pa.array(rel_text))
    slow_ret, bad_ret = parse_id_lists(ret_text)
    slow_rel, bad_rel = parse_id_lists(rel_text)
    assert fast_ret.bad.tolist() == bad_ret.tolist() and bad_ret[7] and bad_rel[9]
    for fast, slow in ((fast_ret, slow_ret), (fast_rel, slow_rel)):
        rebuilt: list[list[str]] = [[] for _ in range(fast.n)]
        for p, x in zip(fast.parent, fast.ids.to_pylist(), strict=True):
            rebuilt[p].append(x)
        assert rebuilt == [ids or [] for ids in slow]
    use = ~(bad_ret | bad_rel)
    hits, nrel, rr, dups = rank_hits(fast_ret, fast_rel, use, 5)
    rows = np.flatnonzero(use)
    assert dups == sum(1 for i in rows if len(set(slow_ret[i])) < len(slow_ret[i]))
    got = retrieval_metrics(hits, nrel, rr, (1, 3, 5))
    rows = np.flatnonzero(use)
    want = rag_scores([slow_ret[i] for i in rows], [slow_rel[i] for i in rows], (1, 3, 5))
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, err_msg=str(key))
    native = id_lists(pa.array([[1, 1, 2], None, []], pa.list_(pa.int64())))
    assert native.parent.tolist() == [0, 0, 0] and native.ids.to_pylist() == ["1", "1", "2"]
    assert native.null.tolist() == [False, True, False]


def test_semantic_similarity_per_model_and_endpoint_equals_sklearn_and_counts_what_it_cannot_compare(
    tmp_path: Path,
) -> None:
    """Cosine similarity of response to reference embeddings (JSON text here, as any
    warehouse can store them) against sklearn's cosine_similarity per row, averaged per
    model and endpoint; a malformed embedding, a dimension mismatch and a zero vector are
    left out and counted, and the interval holds the mean."""
    import json

    from sklearn.metrics.pairwise import cosine_similarity

    from aimon.tasks.quality.semantic import semantic_family

    rng = np.random.default_rng(3)
    n = 300
    resp = rng.standard_normal((n, 6))
    ref = resp + rng.normal(0, 0.8, (n, 6))
    models = ["a" if i % 3 else "b" for i in range(n)]
    endpoints = ["chat" if i % 2 else "rag" for i in range(n)]
    r_text = [json.dumps(list(map(float, v))) for v in resp]
    f_text = [json.dumps(list(map(float, v))) for v in ref]
    r_text[0] = "[1.0, oops"  # malformed response
    f_text[1] = json.dumps([1.0, 2.0])  # dimension mismatch
    r_text[2] = json.dumps([0.0] * 6)  # zero vector
    r_text[3], f_text[3] = "not json", "[1, 2, nan"  # bad on both sides: counted once, by the response
    df = pd.DataFrame(base_rows(n, models, endpoint=endpoints, response_embedding=r_text, reference_embedding=f_text))
    url = write_arrow(tmp_path / "s.duckdb", {"interactions": pa.Table.from_pandas(df, preserve_index=False)})
    fam = semantic_family(ctx_for(url))
    want = np.diag(cosine_similarity(resp, ref))
    ok = np.ones(n, bool)
    ok[:4] = False
    recs = [MetricRecord(f.metric, f.labels, f.value) for f in fam.figures]
    for m in ("a", "b", ALL):
        for ep in ("chat", "rag", ALL):
            sel = ok & (np.array(models) == m if m != ALL else ok) & (np.array(endpoints) == ep if ep != ALL else ok)
            got = get(recs, "semantic_similarity", model=m, endpoint=ep)
            assert got == pytest.approx(want[sel].mean(), rel=1e-6)  # float32 storage
    extra = figs(fam.extra)
    left = {dict(k[1])["reason"]: v for k, v in extra.items() if k[0] == "quality_excluded_rows"}
    assert (left["response_not_json"], left["dimension_mismatch"], left["zero_vector"]) == (2, 1, 1)
    assert sum(left.values()) == 4 and any("4 rows with embeddings that cannot be compared" in x for x in fam.notes)
    labels = (("endpoint", ALL), ("model", ALL))
    lo, hi = extra[("semantic_similarity_ci_low", labels)], extra[("semantic_similarity_ci_high", labels)]
    assert lo < want[ok].mean() < hi and hi - lo < 0.1
    assert {f.n for f in fam.figures if dict(f.labels) == {"model": ALL, "endpoint": ALL}} == {n - 4}


def test_reference_similarity_is_high_for_answers_like_last_weeks_and_falls_for_new_ones(tmp_path: Path) -> None:
    """Responses of a chat endpoint around three topics for a week; a day of the same
    topics scores what the week's own answers score against their centroids, a day
    whose answers moved to a new topic scores far lower. No reference answer needed."""
    import json

    from aimon.tasks.quality.semantic import reference_similarity_family

    rng = np.random.default_rng(8)
    topics = rng.standard_normal((3, 16)) * 2
    new_topic = rng.standard_normal(16) * 2

    def day(start: pd.Timestamp, n: int, centres: np.ndarray, tag: str) -> pd.DataFrame:
        x = centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, 16))
        rows = base_rows(n, response_embedding=[json.dumps(list(map(float, v))) for v in x], endpoint=["chat"] * n)
        rows["timestamp"] = [start + pd.Timedelta(seconds=30 * i) for i in range(n)]
        rows["request_id"] = [f"{tag}{i}" for i in range(n)]
        return pd.DataFrame(rows)

    today = pd.Timestamp(DAY)
    week = [day(today - pd.Timedelta(days=d), 400, topics, f"r{d}-") for d in range(1, 8)]
    same = pd.concat([*week, day(today, 400, topics, "t")], ignore_index=True)
    moved = pd.concat([*week, day(today, 400, np.vstack([topics[:1], new_topic[None]]), "t")], ignore_index=True)
    got = {}
    for name, df in (("same", same), ("moved", moved)):
        url = write_arrow(tmp_path / f"{name}.duckdb", {"interactions": pa.Table.from_pandas(df, preserve_index=False)})
        fam = reference_similarity_family(ctx_for(url))
        recs = [MetricRecord(f.metric, f.labels, f.value) for f in fam.figures]
        got[name] = get(recs, "semantic_reference_similarity", model=ALL, endpoint="chat")
        assert get(recs, "semantic_reference_similarity", model="m", endpoint="chat") == got[name]
    # The week's own answers against their centroids: cosine of a unit point to its topic.
    assert got["same"] > 0.8 and got["moved"] < got["same"] - 0.1
    empty = pd.DataFrame(base_rows(5, response_embedding=[json.dumps([1.0, 0.0])] * 5, endpoint=["chat"] * 5))
    url = write_arrow(tmp_path / "e.duckdb", {"interactions": pa.Table.from_pandas(empty, preserve_index=False)})
    fam = reference_similarity_family(ctx_for(url))
    assert not fam.figures and any("no response embeddings in the reference" in n for n in fam.notes)
