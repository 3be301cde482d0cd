"""Cheaper-model candidates per endpoint.

Per endpoint, the models serving it, their cost per request, and their quality on that
endpoint over the last `switch.evidence_windows` windows: accuracy and macro F1 (label
vs prediction; F1's standard error from resampled confusion counts), mean rating and
helpful ratio (the feedback table), each with its n and standard error. A cheaper model
B is a candidate for the traffic of model A when, for every quality figure both have
with at least `switch.min_sample` rows, the lower end of the 95% interval of the
relative change (q_B - q_A) / q_A is above -`switch.max_quality_drop`: judged with the
intervals, not the point values, so a small sample never passes. When an A/B
experiment on the endpoint assigns A and B to different variants, the figures are
taken from the experiment's rows only (randomised evidence, confidence high);
otherwise from all the endpoint's rows (observational: the models may see different
traffic, confidence medium). ROUGE/BLEU and semantic similarity are per model only
(the quality analyzer) and are not used here. bench/calibrate_switch.py checks the
rule's error rates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from aimon.config.costopt import SwitchConfig
from aimon.errors import ContractError
from aimon.records import MetricRecord
from aimon.tasks.contract import valid_rows
from aimon.tasks.costopt.recommend import Recommendation
from aimon.tasks.orchestration.context import AnalysisContext, endpoint_expr
from aimon.tasks.quality.classification import confusion_counts
from aimon.tasks.quality.feedback import feedback_sums, feedback_table
from aimon.windows import Window

Z95 = 1.959963984540054
ALL_ROWS = ""  # evidence source: every row of the endpoint (else an experiment's name)
DOMINANT = 0.95  # share of a variant's rows one model must serve to stand for the variant


@dataclass(frozen=True)
class Evidence:
    value: float
    se: float
    n: int


@dataclass
class SwitchFindings:
    records: list[MetricRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)


# (endpoint, model, source) -> quality metric -> evidence
EvidenceMap = dict[tuple[str, str, str], dict[str, Evidence]]


def _seg(ctx: AnalysisContext) -> list[sa.ColumnElement[Any]]:
    ix = ctx.interactions
    seg: list[sa.ColumnElement[Any]] = [
        sa.cast(ix.req("model"), sa.String).label("g_model"),
        endpoint_expr(ix).label("g_endpoint"),
    ]
    if ix.has("experiment"):
        seg.append(sa.cast(ix.req("experiment"), sa.String).label("g_experiment"))
    return seg


def _sources(df: pd.DataFrame) -> Iterable[tuple[tuple[str, str, str], pd.DataFrame]]:
    """Each (endpoint, model) over all its rows, and over each experiment's rows."""
    if df.empty:
        return
    for (e, m), part in df.groupby(["g_endpoint", "g_model"]):
        yield (str(e), str(m), ALL_ROWS), part
        if "g_experiment" in part:
            for x, sub in part[part["g_experiment"].notna()].groupby("g_experiment"):
                yield (str(e), str(m), str(x)), sub


def quality_evidence(ctx: AnalysisContext) -> tuple[EvidenceMap, list[str]]:
    ev: EvidenceMap = {}
    notes: list[str] = []
    ix = ctx.interactions
    if ix.has("label", "prediction"):
        cc = confusion_counts(ctx, _seg(ctx))
        # As the classification figures read them: trimmed, blanks left out.
        lab, pred = cc["g_label"].astype("string").str.strip(), cc["g_prediction"].astype("string").str.strip()
        cc = cc.assign(g_label=lab, g_prediction=pred)
        both = cc[(lab.notna() & pred.notna() & (lab != "") & (pred != "")).fillna(False).to_numpy(dtype=bool)]
        both = both.assign(right=(both["g_label"] == both["g_prediction"]).astype("int64") * both["n"])
        for key, part in _sources(both):
            n = int(part["n"].sum())
            if n:
                p = float(part["right"].sum()) / n
                ev.setdefault(key, {})["accuracy"] = Evidence(p, math.sqrt(p * (1 - p) / n), n)
                ev[key]["f1_macro"] = macro_f1_evidence(part)
    name = ctx.cfg.warehouse.feedback_table
    if name and ix.has("request_id"):
        try:
            fb = feedback_table(ctx, name)
        except ContractError as err:
            notes.append(f"model switch: feedback not used ({err})")
        else:
            df = feedback_sums(ctx, fb, _seg(ctx))
            for key, part in _sources(df):
                d = {
                    c: float(part[c].sum())
                    for c in ("n_rating", "rating_sum", "rating_sq", "n_helpful", "n_helpful_known")
                    if c in part
                }
                if d.get("n_rating"):
                    nr, mean = d["n_rating"], d["rating_sum"] / d["n_rating"]
                    var = max(0.0, d["rating_sq"] / nr - mean**2) * nr / max(1.0, nr - 1)
                    ev.setdefault(key, {})["rating"] = Evidence(mean, math.sqrt(var / nr), int(nr))
                if d.get("n_helpful_known"):
                    nh = d["n_helpful_known"]
                    ph = d["n_helpful"] / nh
                    ev.setdefault(key, {})["helpful"] = Evidence(ph, math.sqrt(ph * (1 - ph) / nh), int(nh))
    return ev, notes


def macro_f1(counts: np.ndarray, labels: np.ndarray, preds: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Macro F1 over `classes` (the labels present in either column, as scikit-learn
    averages them; a class never predicted scores 0) of each row of `counts` (draws x
    cells, one cell per (label, prediction) pair)."""
    f1s = []
    for c in classes:
        tp = counts[:, (labels == c) & (preds == c)].sum(axis=1)
        pred_c = counts[:, preds == c].sum(axis=1)
        true_c = counts[:, labels == c].sum(axis=1)
        denom = pred_c + true_c
        f1s.append(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0))
    return np.mean(f1s, axis=0)


def macro_f1_evidence(part: pd.DataFrame, draws: int = 400, seed: int = 0) -> Evidence:
    """Macro F1 of the labelled rows and its standard error from multinomial resamples
    of their confusion counts (F1 has no closed-form variance)."""
    cells = part.groupby(["g_label", "g_prediction"], as_index=False)["n"].sum()
    labels, preds = cells["g_label"].to_numpy(dtype=str), cells["g_prediction"].to_numpy(dtype=str)
    counts = cells["n"].to_numpy(dtype="int64")
    classes = np.unique(np.concatenate([labels, preds]))
    n = int(counts.sum())
    value = float(macro_f1(counts[None, :], labels, preds, classes)[0])
    boot = np.random.default_rng(seed).multinomial(n, counts / n, size=draws)
    return Evidence(value, float(np.std(macro_f1(boot, labels, preds, classes), ddof=1)), n)


def experiment_arms(ctx: AnalysisContext) -> dict[str, dict[str, set[str]]]:
    """endpoint -> experiment -> the models that each alone serve one of its variants."""
    ix = ctx.interactions
    if not ix.has("experiment", "variant"):
        return {}
    stmt = (
        sa.select(
            endpoint_expr(ix).label("e"),
            sa.cast(ix.req("experiment"), sa.String).label("x"),
            sa.cast(ix.req("variant"), sa.String).label("v"),
            sa.cast(ix.req("model"), sa.String).label("m"),
            sa.func.count().label("n"),
        )
        .select_from(ix.table)
        .where(ix.in_window(), valid_rows(ix), ix.req("experiment").is_not(None), ix.req("variant").is_not(None))
        .group_by(sa.literal_column("e"), sa.literal_column("x"), sa.literal_column("v"), sa.literal_column("m"))
    )
    df = pd.DataFrame(ctx.warehouse.fetch(stmt, ctx.params), columns=["e", "x", "v", "m", "n"])
    out: dict[str, dict[str, set[str]]] = {}
    for (e, x), part in df.groupby(["e", "x"]):
        models = set()
        for _, arm in part.groupby("v"):
            top = arm.sort_values("n", ascending=False).iloc[0]
            if top["n"] >= DOMINANT * arm["n"].sum():
                models.add(str(top["m"]))
        if len(models) >= 2:
            out.setdefault(str(e), {})[str(x)] = models
    return out


def compare(
    current: dict[str, Evidence], candidate: dict[str, Evidence], cfg: SwitchConfig
) -> tuple[str, dict[str, float]]:
    """'pass', 'not_shown' (some figure's interval reaches below -max_quality_drop) or
    'no_evidence', and the lower end of each shared figure's 95% interval of the
    relative change."""
    lows: dict[str, float] = {}
    for metric in sorted(set(current) & set(candidate)):
        a, b = current[metric], candidate[metric]
        if min(a.n, b.n) < cfg.min_sample or a.value <= 0:
            continue
        ratio = b.value / a.value
        se = math.sqrt(b.se**2 + (ratio * a.se) ** 2) / a.value
        lows[metric] = ratio - 1.0 - Z95 * se
    if not lows:
        return "no_evidence", lows
    return ("pass" if all(v > -cfg.max_quality_drop for v in lows.values()) else "not_shown"), lows


def evidence_context(ctx: AnalysisContext, windows: int) -> AnalysisContext:
    """The context whose window spans the `windows` windows ending with this one: the
    quality evidence is pooled over them (one day's labels rarely decide a 2% margin)."""
    if windows <= 1:
        return ctx
    w = ctx.window
    start = w.start - (windows - 1) * (w.end - w.start)
    return replace(ctx, window=Window(start, w.end, w.granularity, w.timezone))


def switch_findings(ctx: AnalysisContext, cfg: SwitchConfig, spend: pd.DataFrame, scale: float) -> SwitchFindings:
    """`spend`: the window's requests and spend per (model, endpoint); `scale`: window -> month."""
    out = SwitchFindings()
    per = spend.groupby(["endpoint", "model"], as_index=False)[["n", "n_priced", "cost"]].sum()
    # Per priced request: an unpriced one (no price yet, no tokens) adds $0 and would make
    # its model look cheaper.
    per = per[(per["n_priced"] > 0) & (per["cost"] > 0)]
    for r in per.itertuples(index=False):
        out.records.append(
            MetricRecord.of("llm_cost_per_request_usd", r.cost / r.n_priced, model=r.model, endpoint=r.endpoint)
        )
    pooled = evidence_context(ctx, cfg.evidence_windows)
    ev, notes = quality_evidence(pooled)
    out.notes += notes
    arms = experiment_arms(pooled)
    for endpoint, part in per.groupby("endpoint"):
        if len(part) < 2:
            out.notes.append(f"model switch on {endpoint} skipped: one priced model serves it")
            continue
        cpr = {str(r.model): (r.cost / r.n_priced, r.n) for r in part.itertuples(index=False)}
        missing: list[str] = []  # "a -> b" pairs without enough evidence, on this endpoint
        not_shown: list[str] = []  # ... and pairs whose interval reaches below the margin
        for a, (cost_a, n_a) in sorted(cpr.items(), key=lambda kv: -kv[1][0]):
            best: Recommendation | None = None
            pairs_missing: list[str] = []
            pairs_not_shown: list[str] = []
            for b, (cost_b, _) in cpr.items():
                if cost_b >= cost_a:
                    continue
                source = next((x for x, ms in arms.get(str(endpoint), {}).items() if {a, b} <= ms), ALL_ROWS)
                verdict, lows = compare(
                    ev.get((str(endpoint), a, source), {}), ev.get((str(endpoint), b, source), {}), cfg
                )
                for metric, low in lows.items():
                    out.records.append(
                        MetricRecord.of(
                            "llm_model_switch_quality_change_low",
                            low,
                            endpoint=endpoint,
                            model=a,
                            candidate=b,
                            metric=metric,
                        )
                    )
                if verdict == "no_evidence":
                    pairs_missing.append(f"{a} -> {b}")
                    continue
                if verdict != "pass":
                    worst = min(lows, key=lambda m: lows[m])  # the figure that decides it
                    pairs_not_shown.append(f"{a} -> {b} ({worst} >= {lows[worst]:+.1%})")
                    continue
                saving = n_a * (cost_a - cost_b) * scale
                if best is None or saving > best.monthly_usd:
                    where = f"A/B experiment {source}" if source else "all rows of the endpoint (not randomised)"
                    figures = ", ".join(f"{m} >= {v:+.1%}" for m, v in lows.items())
                    best = Recommendation(
                        kind="model_switch",
                        action=f"move {endpoint} from {a} to {b}",
                        monthly_usd=saving,
                        evidence=(
                            f"${cost_a:.4f} vs ${cost_b:.4f} per request on {int(n_a):,} requests; quality change "
                            f"(95% lower bound) {figures}, from {where}"
                        ),
                        confidence="high" if source else "medium",
                        labels={"model": a, "endpoint": str(endpoint), "candidate": b},
                    )
            if best is not None:
                out.recommendations.append(best)
            else:
                missing += pairs_missing
                not_shown += pairs_not_shown
        if not_shown:
            out.notes.append(
                f"model switch on {endpoint}: no cheaper model shown within {cfg.max_quality_drop:.0%} of the "
                f"quality (the deciding figure's 95% lower bound): {'; '.join(not_shown)}"
            )
        if missing:
            out.notes.append(
                f"model switch on {endpoint}: not enough evidence (no shared quality figure with "
                f"{cfg.min_sample} rows for both) for {', '.join(missing)}"
            )
    return out
