"""Likely causes of alerts on levels (latency quantiles, quality figures) and on
drift: which series moved, weighted by their share of the requests, and the context
lines (siblings, tokens per request, drift in the same window, scores vs thresholds)
(aimon.tasks.alerts.causes)."""

from __future__ import annotations

import statistics
from collections.abc import Callable

from aimon.records import ALL
from aimon.tasks.alerts.causes_base import (
    GROUPS,
    Cause,
    Ctx,
    Series,
    cause_line,
    children_of,
    endpoint_text,
    hour_cause,
    median_past,
    name_of,
    series_key,
    share_parts,
    with_label,
)

# -- levels: latency and quality ----------------------------------------------------------


def _level(
    ctx: Ctx, weight_metric: str, weight_of: Callable[[Series], Series], what: str
) -> tuple[list[Cause], float | None, float | None]:
    """Finer series of a level figure: each one's change from its baseline median,
    weighted by its share of `weight_metric` in the window. Also returns the series'
    own value and baseline median."""
    m, labels = ctx.rule.metric, ctx.labels
    now, past = ctx.now(m), ctx.past(m)
    me = series_key(labels)
    out: list[Cause] = []
    dim, kids = children_of(labels, [now])
    w_now = ctx.now(weight_metric)
    weights = {s: w_now.get(weight_of(s), 0.0) for s in kids if s in now}
    total = sum(weights.values())
    if len(weights) > 1:
        extras = {}
        for s, w in weights.items():
            b = median_past(past, s)
            if b is not None:
                extras[name_of(s, dim.split("/"))] = (w / total if total else 1 / len(weights)) * (now[s] - b)
        line = cause_line(dim, share_parts(extras, ctx.upward), what)
        if line:
            out.append(line)
    return out, now.get(me), median_past(past, me)


def _qname(q: str) -> str:
    try:
        return f"p{float(q) * 100:g}"
    except ValueError:
        return q


def latency_causes(ctx: Ctx) -> list[Cause]:
    labels = ctx.labels
    q = _qname(labels.get("quantile", ""))
    what = f"the {q} increase" if ctx.upward else f"the {q} decrease"

    def req_key(s: Series) -> Series:
        d = dict(s)
        return series_key({k: d[k] for k in GROUPS if k in d})

    out, value, base = _level(ctx, "llm_requests", req_key, what)
    if value is not None and base is not None and ctx.window.granularity == "daily":
        out += _latency_hours(ctx, series_key(labels), base, what)
    out += _siblings(ctx, "llm_latency_seconds", q)
    out += _tokens_per_request(ctx)
    return out


def _latency_hours(ctx: Ctx, me: Series, base: float, what: str) -> list[Cause]:
    hourly, req = ctx.hourly("llm_latency_seconds"), ctx.hourly("llm_requests")
    rk = series_key({k: ctx.labels.get(k, ALL) for k in GROUPS})
    total = sum(fig.get(rk, 0.0) for fig in req.values())
    if not total:
        return []
    extras = {h: req.get(h, {}).get(rk, 0.0) / total * (fig[me] - base) for h, fig in hourly.items() if me in fig}
    line = hour_cause(extras, ctx.upward, what)
    return [line] if line and len(extras) > 1 else []


def _siblings(ctx: Ctx, metric: str, name: str) -> list[Cause]:
    """For a series of one model (on one endpoint): did the model's other endpoints, and
    the other models, change too (the provider, the inputs) or not (this one)?"""
    labels = ctx.labels
    now, past = ctx.now(metric), ctx.past(metric)
    out = []
    for g, other in (("endpoint", "model"), ("model", "endpoint")):
        if labels.get(g) in (None, ALL) or (labels.get(other) == ALL and g == "endpoint"):
            continue
        changes = []
        for s, v in now.items():
            d = dict(s)
            if set(d) != set(labels) or d[g] in (ALL, labels[g]):
                continue
            if any(d[k] != labels[k] for k in labels if k != g):
                continue
            b = median_past(past, s)
            if b:
                changes.append(v / b - 1)
        if not changes:
            continue
        mid = statistics.median(changes)
        if g == "endpoint":
            whose = f"other endpoints of {labels['model']}"
        elif labels.get("endpoint") not in (None, ALL):
            whose = f"other models on {endpoint_text(labels['endpoint'])}"
        else:
            whose = "other models"
        k = len(changes)
        out.append(Cause("sibling", f"{whose}: {name} {mid:+.0%}" + (f" (median of {k})" if k > 1 else "")))
    return out


def _tokens_per_request(ctx: Ctx) -> list[Cause]:
    """Tokens per request of the series' model/endpoint against the baseline (long
    prompts or long answers): the type that changed most, if by 10% or more."""
    me = {k: ctx.labels.get(k, ALL) for k in GROUPS}
    rk = series_key(me)
    r_now, r_past = ctx.now("llm_requests"), ctx.past("llm_requests")
    t_now, t_past = ctx.now("llm_tokens"), ctx.past("llm_tokens")
    if not r_now.get(rk) or not r_past:
        return []
    best: tuple[float, str] | None = None
    for t in ("input", "output"):
        s = with_label(me, type=t)
        if s not in t_now:
            continue
        pairs = [(p.get(s), rp.get(rk)) for p, rp in zip(t_past, r_past, strict=False)]
        per = [a / b for a, b in pairs if a is not None and b]
        if not per:
            continue
        p0, p1 = statistics.median(per), t_now[s] / r_now[rk]
        if p0 and abs(p1 / p0 - 1) >= 0.1 and (best is None or abs(p1 / p0 - 1) > abs(best[0])):
            best = (p1 / p0 - 1, f"{t} tokens per request {p0:,.0f} -> {p1:,.0f} ({p1 / p0 - 1:+.0%})")
    return [Cause("tokens", best[1])] if best else []


def is_quality(ctx: Ctx) -> bool:
    return any(dict(s).get("metric") == ctx.rule.metric for s in ctx.now("quality_sample_size"))


def quality_causes(ctx: Ctx) -> list[Cause]:
    m, labels = ctx.rule.metric, ctx.labels
    word = m.split("_", 1)[-1].upper() if m.startswith("model_") and len(m) <= 9 else m.removeprefix("model_")
    what = f"the {word} drop" if not ctx.upward else f"the {word} rise"

    def n_key(s: Series) -> Series:
        return with_label(dict(s), metric=m)

    out, _, _ = _level(ctx, "quality_sample_size", n_key, what)
    out += _siblings(ctx, m, word)
    if labels.get("model") == ALL and "variant" not in labels:
        out += _variants(ctx, what)
    out += _drift_same_window(ctx)
    return out


def _variants(ctx: Ctx, what: str) -> list[Cause]:
    m, labels = ctx.rule.metric, ctx.labels
    now, past = ctx.now(m), ctx.past(m)
    n_now = ctx.now("quality_sample_size")
    kids = []
    for s in now:
        d = dict(s)
        if set(d) == set(labels) | {"experiment", "variant"} and all(d.get(k) == v for k, v in labels.items()):
            kids.append(s)
    if len(kids) < 2:
        return []
    w = {s: n_now.get(with_label(dict(s), metric=m), 0.0) for s in kids}
    total = sum(w.values())
    extras = {}
    for s in sorted(kids):
        b = median_past(past, s)
        if b is not None:
            d = dict(s)
            extras[f"experiment {d['experiment']} variant {d['variant']}"] = (
                w[s] / total if total else 1 / len(kids)
            ) * (now[s] - b)
    line = cause_line("variant", share_parts(extras, ctx.upward), what)
    return [line] if line else []


def _drift_same_window(ctx: Ctx) -> list[Cause]:
    """Quality: did the inputs drift in the same window (data_drift_detected)?"""
    detected = ctx.now("data_drift_detected")
    if not detected:
        return []
    drifted = sorted(dict(s).get("feature", "?") for s, v in detected.items() if v >= 1)
    if drifted:
        shown = ", ".join(drifted[:5]) + (f" and {len(drifted) - 5} more" if len(drifted) > 5 else "")
        return [Cause("drift", f"input drift in the same window: {shown}", weight=0.5)]
    return [Cause("drift", f"no input drift in the same window ({len(detected)} features checked)")]


# -- drift --------------------------------------------------------------------------------


def drift_causes(ctx: Ctx) -> list[Cause]:
    feature = ctx.labels["feature"]
    thr = {
        dict(s).get("method", ""): v
        for s, v in ctx.now("data_drift_threshold").items()
        if dict(s).get("feature") == feature
    }
    scores_now = ctx.now("data_drift_score")
    scores_past = ctx.past("data_drift_score")
    out: list[Cause] = []
    for method, bound in sorted(thr.items()):
        s = series_key({"feature": feature, "method": method})
        if s not in scores_now or bound != bound:
            continue
        v = scores_now[s]
        text = f"{feature}: {method} {v:.3g} against its threshold {bound:.3g}" + (
            f" ({v / bound:.1f}x)" if bound > 0 else ""
        )
        b = median_past(scores_past, s)
        if b is not None:
            text += f"; median of the previous windows {b:.3g}"
        out.append(Cause("score", text, weight=0.9))
    others = sorted(
        dict(s).get("feature", "?")
        for s, v in ctx.now("data_drift_detected").items()
        if v >= 1 and dict(s).get("feature") != feature
    )
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        out.append(Cause("drift", f"also drifted in this window: {shown}", weight=0.5))
    return out


def embedding_causes(ctx: Ctx) -> list[Cause]:
    thr = {dict(s).get("method", ""): v for s, v in ctx.now("embedding_drift_threshold").items()}
    out: list[Cause] = []
    for s, v in sorted(ctx.now("embedding_drift_score").items()):
        method = dict(s).get("method", "")
        text = f"embeddings: {method} {v:.3g}"
        if method in thr and thr[method] == thr[method]:
            text += f" against its threshold {thr[method]:.3g}"
        b = median_past(ctx.past("embedding_drift_score"), s)
        if b is not None:
            text += f"; median of the previous windows {b:.3g}"
        out.append(Cause("score", text, weight=0.9 if method in thr else 0.4))
    drifted = sorted(dict(s).get("feature", "?") for s, v in ctx.now("data_drift_detected").items() if v >= 1)
    if drifted:
        out.append(Cause("drift", f"features that drifted in this window: {', '.join(drifted[:5])}", weight=0.5))
    return out
