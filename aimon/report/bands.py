"""The alert rules drawn on the charts: a rule's threshold as a line, its baseline as a
band (from the median of the previous windows to the bound), and the windows where
its alerts fired.

The bound is the rule's own (`AlertRule.baseline_bound`, which the alert rules judge
with too) of the median of the same series in the previous `baseline.windows` windows,
absent ones left out, at least `min_windows` of them; tests/test_report.py checks the
drawn bound equals the stored alert event's.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable

from aimon.config.alerts import AlertRule
from aimon.matchers import Matcher, matches_all
from aimon.records import labels_json
from aimon.report.charts import Mark, Trace
from aimon.report.data import Points, ReportData
from aimon.windows import window_containing


def rules_for(data: ReportData, metric: str, labels: dict[str, str]) -> list[AlertRule]:
    """The configured rules that judge this series."""
    out = []
    for rule in data.cfg.alerts.rules:
        if rule.metric != metric or (rule.granularity not in (None, data.granularity)):
            continue
        if matches_all([Matcher.from_config(k, v) for k, v in rule.labels.items()], labels):
            out.append(rule)
    return out


def _previous(
    data: ReportData, start: dt.datetime, n: int, cache: dict[dt.datetime, list[dt.datetime]]
) -> list[dt.datetime]:
    prev = cache.get(start)
    if prev is None or len(prev) < n:
        prev, s = [], start
        for _ in range(n):
            s = window_containing(s - dt.timedelta(microseconds=1), data.granularity, data.cfg.windows.timezone).start
            prev.append(s)
        cache[start] = prev
    return prev[:n]


def baseline(rule: AlertRule, data: ReportData, points: Points) -> dict[dt.datetime, tuple[float, float]]:
    """Window start -> (median of the previous windows, the rule's bound), where the rule
    had enough history to judge."""
    b = rule.baseline
    if b is None:
        return {}
    cache = data.previous  # shared by every chart of the build
    out = {}
    for start in points:
        history = [points[p] for p in _previous(data, start, b.windows, cache) if p in points]
        if len(history) >= b.min_windows:
            median = float(statistics.median(history))
            out[start] = (median, rule.baseline_bound(median))
    return out


def rule_traces(rule: AlertRule, data: ReportData, points: Points, xs: list[str], who: str = "") -> list[Trace]:
    """The rule's lines for one series (`who` names the series when a chart has several)."""
    suffix = f" ({who})" if who else ""
    out = []
    if rule.baseline is not None:
        band = baseline(rule, data, points)
        starts = sorted(band)
        x = [data.x(s) for s in starts]
        out.append(Trace(f"{rule.name} baseline{suffix}", x, [band[s][0] for s in starts], "baseline"))
        out.append(Trace(f"{rule.name} bound{suffix}", x, [band[s][1] for s in starts], "bound"))
    if rule.threshold is not None and xs:
        out.append(
            Trace(f"{rule.name} threshold {rule.op} {rule.threshold:g}", xs, [rule.threshold] * len(xs), "threshold")
        )
    return out


def alert_marks(data: ReportData, metric: str, series: Iterable[dict[str, str]]) -> list[Mark]:
    """The windows where an alert on one of these series was firing or pending."""
    wanted = {labels_json(s) for s in series}
    status: dict[dt.datetime, str] = {}
    for e in data.events:
        if (
            e.metric == metric
            and e.labels in wanted
            and e.status in ("firing", "pending")
            and status.get(e.window_start) != "firing"
        ):
            status[e.window_start] = e.status
    ends = {w.start: w.end for w in data.windows}
    return [Mark(data.x(s), data.x(ends.get(s, s)), st) for s, st in sorted(status.items())]
