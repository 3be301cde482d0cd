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
from collections.abc import Mapping

from aimon.config.alerts import AlertRule
from aimon.store.metrics import Store
from aimon.tasks.alerts.causes_base import (
    ADDITIVE,
    DEFAULT_WINDOWS,
    TOP,
    Cause,
    Ctx,
    FigureCache,
)
from aimon.tasks.alerts.causes_counts import additive_causes, rate_causes
from aimon.tasks.alerts.causes_levels import drift_causes, embedding_causes, is_quality, latency_causes, quality_causes
from aimon.tasks.alerts.rules import previous_windows
from aimon.windows import Window, window_containing

log = logging.getLogger("aimon.alerts")


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
    ctx = Ctx(cache, window, rule, {k: str(v) for k, v in labels.items()}, base, base[-1] if base else window.start)
    causes = [c for c in explain(ctx) if c.text]
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


def explain(ctx: Ctx) -> list[Cause]:
    """The likely-cause lines of the alert in `ctx`, by the kind of its metric."""
    m = ctx.rule.metric
    if m == "llm_error_rate":
        return rate_causes(ctx)
    if m in ADDITIVE:
        return additive_causes(ctx)
    if m == "llm_latency_seconds":
        return latency_causes(ctx)
    if m.startswith("data_drift_") and "feature" in ctx.labels:
        return drift_causes(ctx)
    if m.startswith("embedding_drift_"):
        return embedding_causes(ctx)
    if is_quality(ctx):
        return quality_causes(ctx)
    return []
