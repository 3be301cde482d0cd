"""Likely causes of alerts on counts, spend and rates (llm_errors, llm_cost_usd,
llm_tokens, llm_requests, llm_error_rate): which series, error types, token types
and hours carry the extra (aimon.tasks.alerts.causes)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aimon.records import ALL
from aimon.tasks.alerts.causes_base import (
    GROUPS,
    WHAT,
    Cause,
    Ctx,
    Series,
    cause_line,
    children_of,
    hour_cause,
    mean_past,
    name_of,
    pct_change,
    series_key,
    share_parts,
    with_label,
)
from aimon.tasks.alerts.render import fmt_value

# -- counts and spend ---------------------------------------------------------------------


def additive_causes(ctx: Ctx) -> list[Cause]:
    m, labels = ctx.rule.metric, ctx.labels
    now, past = ctx.now(m), ctx.past(m)
    what = WHAT.get(m, "the change")
    out: list[Cause] = []
    dim, kids = children_of(labels, [now, *past])
    if len(kids) > 1 or (kids and not past):
        extras = {s: now.get(s, 0.0) - mean_past(past, s) for s in kids}
        keys = dim.split("/")
        line = cause_line(dim, share_parts({name_of(s, keys): v for s, v in extras.items()}, ctx.upward), what)
        if line:
            out.append(line)
    if m == "llm_errors" and labels.get("error_type") == ALL:
        out += _error_types(ctx, lambda t: now.get(with_label(labels, error_type=t), 0.0), None)
    if m == "llm_cost_usd":
        out += _cost_context(ctx)
    me = {k: v for k, v in labels.items() if k in GROUPS}
    hourly = ctx.hourly(m)
    if hourly and past:
        total_base = mean_past(past, series_key(labels))
        out += _hours(ctx, me, lambda fig: fig.get(series_key(labels)), total_base, what)
    return out


def _error_types(ctx: Ctx, now_of: Callable[[str], float], req: tuple[float, float] | None) -> list[Cause]:
    """Extra errors per error_type of the series. `req`: (requests now, pooled baseline
    requests per window) for a rate: expected = the type's baseline rate x requests now."""
    labels = {**ctx.labels, "error_type": ALL}
    now, past = ctx.now("llm_errors"), ctx.past("llm_errors")
    types: set[str] = set()
    for fig in (now, *past):
        for s in fig:
            d = dict(s)
            t = d.get("error_type")
            same = set(d) == set(labels) and all(d.get(k) == v for k, v in labels.items() if k != "error_type")
            if t and t != ALL and same:
                types.add(t)
    if not types:
        return []
    extras: dict[str, float] = {}
    for t in sorted(types):
        s = with_label(labels, error_type=t)
        base = mean_past(past, s)
        if req is not None:
            r_now, r_base = req
            base = base / r_base * r_now if r_base else 0.0
        extras[t] = now_of(t) - base
    line = cause_line(
        "error_type", share_parts(extras, ctx.upward), "the extra errors", lambda t: f"error type {t}", str
    )
    return [line] if line else []


def _hours(
    ctx: Ctx,
    me: Mapping[str, str],
    value: Callable[[Mapping[Series, float]], float | None],
    expected_total: float,
    what: str,
) -> list[Cause]:
    """A daily window's hours: each hour's extra against the expected day total spread
    over the hours by their requests (llm_requests of the series' model/endpoint)."""
    hourly = ctx.hourly(ctx.rule.metric)
    req = ctx.hourly("llm_requests")
    rk = series_key({k: me.get(k, ALL) for k in GROUPS})
    weights = {h: fig.get(rk, 0.0) for h, fig in req.items()}
    total_req = sum(weights.values())
    if not total_req:
        return []
    extras = {}
    for h, fig in hourly.items():
        v = value(fig)
        if v is not None:
            extras[h] = v - expected_total * weights.get(h, 0.0) / total_req
    line = hour_cause(extras, ctx.upward, what)
    return [line] if line and len(extras) > 1 else []


def _cost_context(ctx: Ctx) -> list[Cause]:
    """Spend: more requests vs more spend per request; which token types grew."""
    labels, out = ctx.labels, []
    me = series_key(labels)
    now, past = ctx.now("llm_cost_usd"), ctx.past("llm_cost_usd")
    rk = series_key({k: labels.get(k, ALL) for k in GROUPS})
    r_now, r_past = ctx.now("llm_requests"), ctx.past("llm_requests")
    if me in now and rk in r_now and r_past and past:
        c1, c0 = now[me], mean_past(past, me)
        n1, n0 = r_now[rk], mean_past(r_past, rk)
        if n0 > 0 and n1 > 0:
            per0, per1 = c0 / n0, c1 / n1
            parts = {
                f"more requests ({pct_change(n1, n0)})": (n1 - n0) * per0,
                f"spend per request {fmt_value('x_usd', per0)} -> {fmt_value('x_usd', per1)}": n1 * (per1 - per0),
            }
            line = cause_line("traffic", share_parts(parts, ctx.upward), "the extra spend")
            if line:
                out.append(line)
    t_now, t_past = ctx.now("llm_tokens"), ctx.past("llm_tokens")
    extras: dict[str, float] = {}
    change: dict[str, str] = {}
    for s in sorted({s for fig in (t_now, *t_past) for s in fig}):
        d = dict(s)
        if "type" in d and all(d.get(k) == v for k, v in labels.items()) and len(d) == len(labels) + 1:
            base = mean_past(t_past, s)
            extras[d["type"]] = t_now.get(s, 0.0) - base
            change[d["type"]] = pct_change(t_now.get(s, 0.0), base)
    if extras:
        line = cause_line(
            "token_type", share_parts(extras, ctx.upward), "the extra tokens", lambda t: f"{t} tokens ({change[t]})"
        )
        if line:
            out.append(line)
    return out


# -- rates ---------------------------------------------------------------------------------


def rate_causes(ctx: Ctx) -> list[Cause]:
    """llm_error_rate: the extra errors beyond the baseline's pooled rate at this
    window's requests, per finer series, per error type and per hour."""
    labels = ctx.labels
    req_now, req_past = ctx.now("llm_requests"), ctx.past("llm_requests")
    err_now, err_past = ctx.now("llm_errors"), ctx.past("llm_errors")

    def rate0(s: Series) -> float | None:
        e = sum(p.get(_err(s), 0.0) for p in err_past)
        r = sum(p.get(s, 0.0) for p in req_past)
        return e / r if r else None

    me = series_key(labels)
    base_rate = rate0(me) or 0.0
    what = "the extra errors" if req_past else "the errors (no earlier windows stored)"
    out: list[Cause] = []
    dim, kids = children_of(labels, [req_now, *req_past])
    if len(kids) > 1:
        extras = {}
        for s in kids:
            r0 = rate0(s)
            extras[name_of(s, dim.split("/"))] = err_now.get(_err(s), 0.0) - (
                base_rate if r0 is None else r0
            ) * req_now.get(s, 0.0)
        line = cause_line(dim, share_parts(extras, ctx.upward), what)
        if line:
            out.append(line)
    r_base = sum(p.get(me, 0.0) for p in req_past) / len(req_past) if req_past else 0.0
    out += _error_types(
        ctx, lambda t: err_now.get(with_label(labels, error_type=t), 0.0), (req_now.get(me, 0.0), r_base)
    )
    if ctx.window.granularity == "daily":
        h_err, h_req = ctx.hourly("llm_errors"), ctx.hourly("llm_requests")
        extras_h = {
            h: h_err.get(h, {}).get(_err(me), 0.0) - base_rate * fig.get(me, 0.0)
            for h, fig in h_req.items()
            if me in fig
        }
        line = hour_cause(extras_h, ctx.upward, what)
        if line and len(extras_h) > 1:
            out.append(line)
    return out


def _err(s: Series) -> Series:
    return with_label(dict(s), error_type=ALL)
