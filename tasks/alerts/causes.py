"""Likely causes of an alert, from the stored figures only: which models, endpoints,
error types, token types or hours carry the change of the alert's series against its
baseline, with their share, so a notification says where to look first.

The baseline is the same metric's previous windows (the rule's `baseline.windows`, else
7) before the alert became active, so a still-firing alert is explained against the
days before the incident, not against the incident itself. Nothing is read from the
warehouse: a handful of metric-table reads per window (`FigureCache`, shared by every
alert of the window, one read per metric and granularity).

How a change is split (docs/alerts.md, "Likely causes and next steps"):
- counts and spend (llm_errors, llm_cost_usd, llm_tokens, llm_requests): each finer
  series' extra = its value - the mean of its baseline windows (absent = 0), so the
  parts add up to the series' own change;
- rates (llm_error_rate): the extra errors = errors - the baseline's pooled error rate
  x this window's requests, per finer series and per error type (traffic growth is
  not "extra"); per hour against the series' baseline rate;
- levels (latency quantiles, quality figures): each finer series' change from its
  baseline median, weighted by its share of the requests (of the labelled rows);
- a share is a part's extra over the sum of the extras in the alert's direction (the
  share "of the increase"), parts under 5% left out. Lines are ranked by their top
  share; context lines (siblings, tokens per request, drift in the same window,
  scores vs thresholds) follow. At most 3 lines.
"""

from __future__ import annotations

import datetime as dt
import logging
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from aimon.config.alerts import AlertRule
from aimon.records import ALL
from aimon.store.metrics import Store
from aimon.tasks.alerts.render import fmt_value
from aimon.tasks.alerts.rules import previous_windows
from aimon.windows import Window, window_containing

log = logging.getLogger("aimon.alerts")

TOP = 3  # lines per notification item
MIN_SHARE = 0.05  # parts carrying less of the change are left out
COVER = 0.8  # a line lists parts until they carry this much (at most 3 parts)
DEFAULT_WINDOWS = 7  # baseline windows of a rule without a baseline
ADDITIVE = ("llm_errors", "llm_cost_usd", "llm_tokens", "llm_requests", "llm_unpriced_requests")
_WHAT = {
    "llm_errors": "the extra errors",
    "llm_error_rate": "the extra errors",
    "llm_cost_usd": "the extra spend",
    "llm_tokens": "the extra tokens",
    "llm_requests": "the extra requests",
    "llm_unpriced_requests": "the extra unpriced requests",
}
# Breakdown dimensions, tried in this order (the order also breaks ties in the ranking).
_GROUPS = ("model", "endpoint")

Series = tuple[tuple[str, str], ...]  # sorted label items
ByWindow = dict[dt.datetime, dict[Series, float]]


def _key(labels: Mapping[str, str]) -> Series:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


@dataclass(frozen=True)
class Part:
    """One part of a breakdown: 'gpt-4o on /chat' carrying `share` of the change."""

    name: str
    share: float


@dataclass(frozen=True)
class Cause:
    """One line of a notification's likely causes. `parts` is empty for a context line
    (a score against its threshold, what other models did, drift in the same window)."""

    kind: str  # model/endpoint, error_type, token_type, traffic, hour, sibling, tokens, drift, score
    text: str
    parts: tuple[Part, ...] = ()
    weight: float = 0.0  # ranking: the top part's share; context lines below every share line


@dataclass
class FigureCache:
    """The stored figures of one alert window and the windows before it, read once per
    metric and granularity for every alert of the window (`likely_causes(cache=...)`)."""

    store: Store
    window: Window
    _data: dict[tuple[str, str], tuple[dt.datetime, ByWindow]] = field(default_factory=dict)

    def get(self, metric: str, start: dt.datetime, granularity: str | None = None) -> ByWindow:
        """Figures of `metric` in windows starting in [start, window.end), by window start."""
        gran = granularity or self.window.granularity
        have = self._data.get((metric, gran))
        if have is not None and have[0] <= start:
            return have[1]
        out: ByWindow = {}
        for f in self.store.figures(granularity=gran, metric=metric, start_from=start, before=self.window.end):
            out.setdefault(f.window_start, {})[_key(f.labels)] = f.value
        self._data[(metric, gran)] = (start, out)
        return out


@dataclass(frozen=True)
class _Ctx:
    cache: FigureCache
    window: Window
    rule: AlertRule
    labels: dict[str, str]
    base: list[dt.datetime]  # baseline window starts, most recent first
    first: dt.datetime  # the earliest start to read

    @property
    def upward(self) -> bool:
        return self.rule.upward

    def now(self, metric: str) -> dict[Series, float]:
        return self.cache.get(metric, self.first).get(self.window.start, {})

    def past(self, metric: str) -> list[dict[Series, float]]:
        """The metric's figures in each baseline window that holds any figure of it."""
        data = self.cache.get(metric, self.first)
        return [data[s] for s in self.base if s in data]

    def hourly(self, metric: str) -> dict[dt.datetime, dict[Series, float]]:
        if self.window.granularity != "daily":
            return {}
        return self.cache.get(metric, self.window.start, "hourly")


def likely_causes(
    store: Store,
    window: Window,
    rule: AlertRule,
    labels: Mapping[str, str],
    *,
    since: dt.datetime | None = None,
    cache: FigureCache | None = None,
    top: int = TOP,
) -> tuple[Cause, ...]:
    """The breakdown that explains most of the change of the series `labels` of `rule`
    in `window` against its baseline, as at most `top` ranked lines; () when the stored
    figures hold no breakdown of it. `since`: when the alert became active (its baseline
    is the windows before that); `cache`: share one FigureCache among a window's alerts."""
    cache = cache if cache is not None else FigureCache(store, window)
    n = rule.baseline.windows if rule.baseline is not None else DEFAULT_WINDOWS
    anchor = window
    if since is not None and since < window.start:
        anchor = window_containing(since, window.granularity, window.timezone)
    base = [w.start for w in previous_windows(anchor, n)]
    ctx = _Ctx(cache, window, rule, {k: str(v) for k, v in labels.items()}, base, base[-1] if base else window.start)
    causes = [c for c in _explain(ctx) if c.text]
    ranked = sorted(enumerate(causes), key=lambda ic: (-ic[1].weight, ic[0]))
    return tuple(c for _, c in ranked[:top])


def cause_lines(cache: FigureCache, rule: AlertRule, labels: Mapping[str, str], since: dt.datetime | None) -> list[str]:
    """The notification's `causes`: the lines of likely_causes. A breakdown that fails
    (figures of an unexpected shape) costs the notification its causes, never the
    notification itself: it is logged and the alert goes out without them."""
    try:
        return [c.text for c in likely_causes(cache.store, cache.window, rule, labels, since=since, cache=cache)]
    except Exception:  # the alert must go out even if its explanation fails
        log.warning("rule %s %s: likely causes failed; sent without them", rule.name, dict(labels), exc_info=True)
        return []


def _explain(ctx: _Ctx) -> list[Cause]:
    m = ctx.rule.metric
    if m == "llm_error_rate":
        return _rate(ctx)
    if m in ADDITIVE:
        return _additive(ctx)
    if m == "llm_latency_seconds":
        return _latency(ctx)
    if m.startswith("data_drift_") and "feature" in ctx.labels:
        return _drift(ctx)
    if m.startswith("embedding_drift_"):
        return _embedding(ctx)
    if _is_quality(ctx):
        return _quality(ctx)
    return []


# -- shares -------------------------------------------------------------------------------


def _shares(extras: Mapping[str, float], upward: bool) -> list[Part]:
    """Each name's share of the change in the alert's direction, largest first."""
    signed = {k: (v if upward else -v) for k, v in extras.items()}
    total = sum(v for v in signed.values() if v > 0)
    if total <= 0:
        return []
    parts = [Part(k, v / total) for k, v in signed.items() if v > 0]
    return sorted(parts, key=lambda p: (-p.share, p.name))


def _largest(parts: list[Part], most: int) -> list[Part]:
    """The largest parts (sorted largest first) until they carry COVER of the change: at
    most `most`, none under MIN_SHARE."""
    kept: list[Part] = []
    for p in parts:
        if p.share < MIN_SHARE or len(kept) == most:
            break
        kept.append(p)
        if sum(k.share for k in kept) >= COVER:
            break
    return kept


def _line(
    kind: str, parts: list[Part], what: str, name: Callable[[str], str] = str, rest: Callable[[str], str] | None = None
) -> Cause | None:
    """'gpt-4o on /chat: 82% of the extra errors; claude on /chat: 12%': the largest parts
    until they carry COVER of the change (at most 3, none under MIN_SHARE). `rest` names
    the parts after the first (default: like the first)."""
    kept = _largest(parts, 3)
    if not kept:
        return None
    first, *others = kept
    text = f"{name(first.name)}: {first.share:.0%} of {what}" + "".join(
        f"; {(rest or name)(p.name)}: {p.share:.0%}" for p in others
    )
    return Cause(kind, text, tuple(kept), first.share)


def _pct(new: float, old: float) -> str:
    if old == 0:
        return "new" if new else "+0%"
    return f"{new / old - 1:+.0%}"


# -- series -------------------------------------------------------------------------------


def _with(labels: Mapping[str, str], **kw: str) -> Series:
    return _key({**labels, **kw})


def _children(labels: Mapping[str, str], figures: Sequence[Mapping[Series, float]]) -> tuple[str, list[Series]]:
    """The finer series of `labels` along model/endpoint: those keys where `labels` has
    __all__ take a concrete value, every other label equal. ('', []) if none varies."""
    free = [g for g in _GROUPS if labels.get(g) == ALL]
    if not free:
        return "", []
    fixed = {k: v for k, v in labels.items() if k not in free}
    found: set[Series] = set()
    for fig in figures:
        for s in fig:
            d = dict(s)
            if set(d) != set(labels) or any(d.get(k) != v for k, v in fixed.items()):
                continue
            if all(d.get(g) not in (None, ALL) for g in free):
                found.add(s)
    return "/".join(free), sorted(found)


def _name_of(s: Series, keys: Sequence[str]) -> str:
    d = dict(s)
    if "model" in keys and "endpoint" in keys:
        return f"{d['model']} on {_ep(d['endpoint'])}"
    if keys == ["endpoint"]:
        return _ep(d["endpoint"])
    return ", ".join(f"{d[k]}" for k in keys)


def _ep(e: str) -> str:
    return e if e.startswith("/") else f"/{e}"


def _mean(past: Sequence[Mapping[Series, float]], s: Series) -> float:
    """Mean over the baseline windows of an additive series (absent in a window = 0)."""
    return sum(p.get(s, 0.0) for p in past) / len(past) if past else 0.0


def _median(past: Sequence[Mapping[Series, float]], s: Series) -> float | None:
    vals = [p[s] for p in past if s in p and p[s] == p[s]]
    return float(statistics.median(vals)) if vals else None


def _hour_line(extras: Mapping[dt.datetime, float], upward: bool, what: str) -> Cause | None:
    """Hours carrying the change, grouped into runs of consecutive hours:
    'hours 14:00-16:00 UTC: 85% of the extra errors'."""
    parts = _shares({h.isoformat(): v for h, v in extras.items()}, upward)
    kept = _largest(parts, 6)
    if not kept:
        return None
    starts = sorted(dt.datetime.fromisoformat(p.name) for p in kept)
    runs: list[list[dt.datetime]] = []
    for h in starts:
        if runs and h - runs[-1][-1] == dt.timedelta(hours=1):
            runs[-1].append(h)
        else:
            runs.append([h])
    spans = ", ".join(f"{r[0]:%H:%M}-{r[-1] + dt.timedelta(hours=1):%H:%M}" for r in runs)
    share = sum(p.share for p in kept)
    word = "hour" if len(kept) == 1 else "hours"
    return Cause("hour", f"{word} {spans} UTC: {share:.0%} of {what}", tuple(kept), share)


# -- counts and spend ---------------------------------------------------------------------


def _additive(ctx: _Ctx) -> list[Cause]:
    m, labels = ctx.rule.metric, ctx.labels
    now, past = ctx.now(m), ctx.past(m)
    what = _WHAT.get(m, "the change")
    out: list[Cause] = []
    dim, kids = _children(labels, [now, *past])
    if len(kids) > 1 or (kids and not past):
        extras = {s: now.get(s, 0.0) - _mean(past, s) for s in kids}
        keys = dim.split("/")
        line = _line(dim, _shares({_name_of(s, keys): v for s, v in extras.items()}, ctx.upward), what)
        if line:
            out.append(line)
    if m == "llm_errors" and labels.get("error_type") == ALL:
        out += _error_types(ctx, lambda t: now.get(_with(labels, error_type=t), 0.0), None)
    if m == "llm_cost_usd":
        out += _cost_context(ctx)
    me = {k: v for k, v in labels.items() if k in _GROUPS}
    hourly = ctx.hourly(m)
    if hourly and past:
        total_base = _mean(past, _key(labels))
        out += _hours(ctx, me, lambda fig: fig.get(_key(labels)), total_base, what)
    return out


def _error_types(ctx: _Ctx, now_of: Callable[[str], float], req: tuple[float, float] | None) -> list[Cause]:
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
        s = _with(labels, error_type=t)
        base = _mean(past, s)
        if req is not None:
            r_now, r_base = req
            base = base / r_base * r_now if r_base else 0.0
        extras[t] = now_of(t) - base
    line = _line("error_type", _shares(extras, ctx.upward), "the extra errors", lambda t: f"error type {t}", str)
    return [line] if line else []


def _hours(
    ctx: _Ctx,
    me: Mapping[str, str],
    value: Callable[[Mapping[Series, float]], float | None],
    expected_total: float,
    what: str,
) -> list[Cause]:
    """A daily window's hours: each hour's extra against the expected day total spread
    over the hours by their requests (llm_requests of the series' model/endpoint)."""
    hourly = ctx.hourly(ctx.rule.metric)
    req = ctx.hourly("llm_requests")
    rk = _key({k: me.get(k, ALL) for k in _GROUPS})
    weights = {h: fig.get(rk, 0.0) for h, fig in req.items()}
    total_req = sum(weights.values())
    if not total_req:
        return []
    extras = {}
    for h, fig in hourly.items():
        v = value(fig)
        if v is not None:
            extras[h] = v - expected_total * weights.get(h, 0.0) / total_req
    line = _hour_line(extras, ctx.upward, what)
    return [line] if line and len(extras) > 1 else []


def _cost_context(ctx: _Ctx) -> list[Cause]:
    """Spend: more requests vs more spend per request; which token types grew."""
    labels, out = ctx.labels, []
    me = _key(labels)
    now, past = ctx.now("llm_cost_usd"), ctx.past("llm_cost_usd")
    rk = _key({k: labels.get(k, ALL) for k in _GROUPS})
    r_now, r_past = ctx.now("llm_requests"), ctx.past("llm_requests")
    if me in now and rk in r_now and r_past and past:
        c1, c0 = now[me], _mean(past, me)
        n1, n0 = r_now[rk], _mean(r_past, rk)
        if n0 > 0 and n1 > 0:
            per0, per1 = c0 / n0, c1 / n1
            parts = {
                f"more requests ({_pct(n1, n0)})": (n1 - n0) * per0,
                f"spend per request {fmt_value('x_usd', per0)} -> {fmt_value('x_usd', per1)}": n1 * (per1 - per0),
            }
            line = _line("traffic", _shares(parts, ctx.upward), "the extra spend")
            if line:
                out.append(line)
    t_now, t_past = ctx.now("llm_tokens"), ctx.past("llm_tokens")
    extras: dict[str, float] = {}
    change: dict[str, str] = {}
    for s in sorted({s for fig in (t_now, *t_past) for s in fig}):
        d = dict(s)
        if "type" in d and all(d.get(k) == v for k, v in labels.items()) and len(d) == len(labels) + 1:
            base = _mean(t_past, s)
            extras[d["type"]] = t_now.get(s, 0.0) - base
            change[d["type"]] = _pct(t_now.get(s, 0.0), base)
    if extras:
        line = _line(
            "token_type", _shares(extras, ctx.upward), "the extra tokens", lambda t: f"{t} tokens ({change[t]})"
        )
        if line:
            out.append(line)
    return out


# -- rates ---------------------------------------------------------------------------------


def _rate(ctx: _Ctx) -> list[Cause]:
    """llm_error_rate: the extra errors beyond the baseline's pooled rate at this
    window's requests, per finer series, per error type and per hour."""
    labels = ctx.labels
    req_now, req_past = ctx.now("llm_requests"), ctx.past("llm_requests")
    err_now, err_past = ctx.now("llm_errors"), ctx.past("llm_errors")

    def rate0(s: Series) -> float | None:
        e = sum(p.get(_err(s), 0.0) for p in err_past)
        r = sum(p.get(s, 0.0) for p in req_past)
        return e / r if r else None

    me = _key(labels)
    base_rate = rate0(me) or 0.0
    what = "the extra errors" if req_past else "the errors (no earlier windows stored)"
    out: list[Cause] = []
    dim, kids = _children(labels, [req_now, *req_past])
    if len(kids) > 1:
        extras = {}
        for s in kids:
            r0 = rate0(s)
            extras[_name_of(s, dim.split("/"))] = err_now.get(_err(s), 0.0) - (
                base_rate if r0 is None else r0
            ) * req_now.get(s, 0.0)
        line = _line(dim, _shares(extras, ctx.upward), what)
        if line:
            out.append(line)
    r_base = sum(p.get(me, 0.0) for p in req_past) / len(req_past) if req_past else 0.0
    out += _error_types(ctx, lambda t: err_now.get(_with(labels, error_type=t), 0.0), (req_now.get(me, 0.0), r_base))
    if ctx.window.granularity == "daily":
        h_err, h_req = ctx.hourly("llm_errors"), ctx.hourly("llm_requests")
        extras_h = {
            h: h_err.get(h, {}).get(_err(me), 0.0) - base_rate * fig.get(me, 0.0)
            for h, fig in h_req.items()
            if me in fig
        }
        line = _hour_line(extras_h, ctx.upward, what)
        if line and len(extras_h) > 1:
            out.append(line)
    return out


def _err(s: Series) -> Series:
    return _with(dict(s), error_type=ALL)


# -- levels: latency and quality ----------------------------------------------------------


def _level(
    ctx: _Ctx, weight_metric: str, weight_of: Callable[[Series], Series], what: str
) -> tuple[list[Cause], float | None, float | None]:
    """Finer series of a level figure: each one's change from its baseline median,
    weighted by its share of `weight_metric` in the window. Also returns the series'
    own value and baseline median."""
    m, labels = ctx.rule.metric, ctx.labels
    now, past = ctx.now(m), ctx.past(m)
    me = _key(labels)
    out: list[Cause] = []
    dim, kids = _children(labels, [now])
    w_now = ctx.now(weight_metric)
    weights = {s: w_now.get(weight_of(s), 0.0) for s in kids if s in now}
    total = sum(weights.values())
    if len(weights) > 1:
        extras = {}
        for s, w in weights.items():
            b = _median(past, s)
            if b is not None:
                extras[_name_of(s, dim.split("/"))] = (w / total if total else 1 / len(weights)) * (now[s] - b)
        line = _line(dim, _shares(extras, ctx.upward), what)
        if line:
            out.append(line)
    return out, now.get(me), _median(past, me)


def _qname(q: str) -> str:
    try:
        return f"p{float(q) * 100:g}"
    except ValueError:
        return q


def _latency(ctx: _Ctx) -> list[Cause]:
    labels = ctx.labels
    q = _qname(labels.get("quantile", ""))
    what = f"the {q} increase" if ctx.upward else f"the {q} decrease"

    def req_key(s: Series) -> Series:
        d = dict(s)
        return _key({k: d[k] for k in _GROUPS if k in d})

    out, value, base = _level(ctx, "llm_requests", req_key, what)
    if value is not None and base is not None and ctx.window.granularity == "daily":
        out += _latency_hours(ctx, _key(labels), base, what)
    out += _siblings(ctx, "llm_latency_seconds", q)
    out += _tokens_per_request(ctx)
    return out


def _latency_hours(ctx: _Ctx, me: Series, base: float, what: str) -> list[Cause]:
    hourly, req = ctx.hourly("llm_latency_seconds"), ctx.hourly("llm_requests")
    rk = _key({k: ctx.labels.get(k, ALL) for k in _GROUPS})
    total = sum(fig.get(rk, 0.0) for fig in req.values())
    if not total:
        return []
    extras = {h: req.get(h, {}).get(rk, 0.0) / total * (fig[me] - base) for h, fig in hourly.items() if me in fig}
    line = _hour_line(extras, ctx.upward, what)
    return [line] if line and len(extras) > 1 else []


def _siblings(ctx: _Ctx, metric: str, name: str) -> list[Cause]:
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
            b = _median(past, s)
            if b:
                changes.append(v / b - 1)
        if not changes:
            continue
        mid = statistics.median(changes)
        if g == "endpoint":
            whose = f"other endpoints of {labels['model']}"
        elif labels.get("endpoint") not in (None, ALL):
            whose = f"other models on {_ep(labels['endpoint'])}"
        else:
            whose = "other models"
        k = len(changes)
        out.append(Cause("sibling", f"{whose}: {name} {mid:+.0%}" + (f" (median of {k})" if k > 1 else "")))
    return out


def _tokens_per_request(ctx: _Ctx) -> list[Cause]:
    """Tokens per request of the series' model/endpoint against the baseline (long
    prompts or long answers): the type that changed most, if by 10% or more."""
    me = {k: ctx.labels.get(k, ALL) for k in _GROUPS}
    rk = _key(me)
    r_now, r_past = ctx.now("llm_requests"), ctx.past("llm_requests")
    t_now, t_past = ctx.now("llm_tokens"), ctx.past("llm_tokens")
    if not r_now.get(rk) or not r_past:
        return []
    best: tuple[float, str] | None = None
    for t in ("input", "output"):
        s = _with(me, type=t)
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


def _is_quality(ctx: _Ctx) -> bool:
    return any(dict(s).get("metric") == ctx.rule.metric for s in ctx.now("quality_sample_size"))


def _quality(ctx: _Ctx) -> list[Cause]:
    m, labels = ctx.rule.metric, ctx.labels
    word = m.split("_", 1)[-1].upper() if m.startswith("model_") and len(m) <= 9 else m.removeprefix("model_")
    what = f"the {word} drop" if not ctx.upward else f"the {word} rise"

    def n_key(s: Series) -> Series:
        return _with(dict(s), metric=m)

    out, _, _ = _level(ctx, "quality_sample_size", n_key, what)
    out += _siblings(ctx, m, word)
    if labels.get("model") == ALL and "variant" not in labels:
        out += _variants(ctx, what)
    out += _drift_same_window(ctx)
    return out


def _variants(ctx: _Ctx, what: str) -> list[Cause]:
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
    w = {s: n_now.get(_with(dict(s), metric=m), 0.0) for s in kids}
    total = sum(w.values())
    extras = {}
    for s in sorted(kids):
        b = _median(past, s)
        if b is not None:
            d = dict(s)
            extras[f"experiment {d['experiment']} variant {d['variant']}"] = (
                w[s] / total if total else 1 / len(kids)
            ) * (now[s] - b)
    line = _line("variant", _shares(extras, ctx.upward), what)
    return [line] if line else []


def _drift_same_window(ctx: _Ctx) -> list[Cause]:
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


def _drift(ctx: _Ctx) -> list[Cause]:
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
        s = _key({"feature": feature, "method": method})
        if s not in scores_now or bound != bound:
            continue
        v = scores_now[s]
        text = f"{feature}: {method} {v:.3g} against its threshold {bound:.3g}" + (
            f" ({v / bound:.1f}x)" if bound > 0 else ""
        )
        b = _median(scores_past, s)
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


def _embedding(ctx: _Ctx) -> list[Cause]:
    thr = {dict(s).get("method", ""): v for s, v in ctx.now("embedding_drift_threshold").items()}
    out: list[Cause] = []
    for s, v in sorted(ctx.now("embedding_drift_score").items()):
        method = dict(s).get("method", "")
        text = f"embeddings: {method} {v:.3g}"
        if method in thr and thr[method] == thr[method]:
            text += f" against its threshold {thr[method]:.3g}"
        b = _median(ctx.past("embedding_drift_score"), s)
        if b is not None:
            text += f"; median of the previous windows {b:.3g}"
        out.append(Cause("score", text, weight=0.9 if method in thr else 0.4))
    drifted = sorted(dict(s).get("feature", "?") for s, v in ctx.now("data_drift_detected").items() if v >= 1)
    if drifted:
        out.append(Cause("drift", f"features that drifted in this window: {', '.join(drifted[:5])}", weight=0.5))
    return out
