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
from collections.abc import Iterable

from aimon.config.alerts import AlertRule
from aimon.matchers import Matcher, evidence_matches, matches_all
from aimon.records import labels_json
from aimon.report import memo
from aimon.report.charts import Mark, Trace
from aimon.report.data import Points, ReportData
from aimon.windows import phase_of, window_containing


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
    """The n calendar windows before `start`, most recent first."""
    prev = cache.get(start)
    if prev is None or len(prev) < n:
        g, tz = data.granularity, data.cfg.windows.timezone
        last = window_containing(start - dt.timedelta(microseconds=1), g, tz).start
        before = cache.get(last)  # the series' windows are read oldest first: usually known
        if before is not None and len(before) >= n - 1:
            prev = [last, *before[: n - 1]]
        else:
            prev, s = [last], last
            for _ in range(n - 1):
                s = window_containing(s - dt.timedelta(microseconds=1), g, tz).start
                prev.append(s)
        cache[start] = prev
    return prev[:n]


# Event statuses where the series breached: not a baseline window (as
# aimon.tasks.alerts.inputs.ALERTING; the report sits below aimon.tasks).
ALERTING = ("pending", "firing", "folded")
# Event status -> how a chart shades its window.
MARKED = {"firing": "firing", "recovering": "firing", "folded": "firing", "pending": "pending"}


def baseline(
    rule: AlertRule, data: ReportData, points: Points, labels: dict[str, str] | None = None
) -> dict[dt.datetime, tuple[float, float]]:
    """Window start -> (the baseline's centre, the rule's bound), where the rule had
    enough history to judge, as aimon.tasks.alerts.rules.evaluate_rule judges: the
    previous `baseline.windows` windows, those where this series' alert was pending,
    firing or folded left out and older ones taken instead (up to `baseline.span`
    back), through the rule's own `bound_of` (learned, seasonal, binomial). `labels`:
    the series' (without them, no window is left out and min_sample is not read).
    Not drawn: windows an `unless` figure kept from being judged."""
    b = rule.baseline
    if b is None:
        return {}
    key = (rule.name, labels_json(labels)) if labels is not None else None
    if key is not None and key in data.bands:  # a series on a concern page and the alerts page
        return data.bands[key]
    cache = data.previous  # shared by every chart of the build
    skip: set[dt.datetime] = set()
    evidence: list[tuple[int, Points]] = []
    if labels is not None:
        lj = labels_json(labels)
        if b.exclude_alerting:
            skip = {
                e.window_start for e in data.events if e.rule == rule.name and e.labels == lj and e.status in ALERTING
            }
        if rule.min_sample is not None:
            evidence = _evidence(data, rule.min_sample.metric, rule.metric, labels)
    seasonal = b.method == "learned" and b.seasonal
    g, tz = data.granularity, data.cfg.windows.timezone
    phases_of = data.phases  # shared by every chart of the build

    def phase(start: dt.datetime) -> int:
        got = phases_of.get(start)
        if got is None:
            got = phases_of[start] = phase_of(start, g, tz)
        return got

    n_at: dict[dt.datetime, float | None] = {}

    def n_of(start: dt.datetime) -> float | None:
        if start not in n_at:
            n_at[start] = _n(evidence, start)
        return n_at[start]

    memo_key = None
    out: dict[dt.datetime, tuple[float, float]] = {}
    todo: Iterable[dt.datetime] = points
    if labels is not None:  # the last build's band, up to the first window whose inputs changed
        memo_key = f"{rule.name}|{labels_json(labels)}"
        fingerprint = f"{rule.model_dump_json()}|{g}|{tz}"
        inputs = {
            s.isoformat(): [memo.clean(v), memo.clean(n_of(s)) if evidence else None, s in skip]
            for s, v in points.items()
        }
        inputs.update({s.isoformat(): [None, None, True] for s in skip if s not in points})
        out = memo.reuse(data.memo_in.get(memo_key), fingerprint, inputs)
        last = max(out, default=None)
        todo = points if last is None else [s for s in points if s > last]
    for start in todo:
        prev = _previous(data, start, b.span, cache)
        # The first `windows` calendar windows back that the alert was not on (absent ones count).
        chosen = prev[: b.windows] if not skip else [p for p in prev if p not in skip][: b.windows]
        there = [p for p in chosen if p in points]
        if rule.min_sample is not None and labels is not None:  # thin windows count as absent
            there = [p for p in there if (n_of(p) or 0.0) >= rule.min_sample.value]
        if len(there) < b.needed:
            continue
        n = None
        if rule.min_sample is not None and labels is not None:
            n = n_of(start)
            if n is None or n < rule.min_sample.value:  # not judged: no bound
                continue
        n_base = sum((n_of(p) or 0.0) for p in there) if evidence else 0.0
        bound = rule.bound_of(
            [points[p] for p in there],
            phases=[phase(p) for p in there] if seasonal else None,
            phase=phase(start) if seasonal else None,
            n=n,
            n_baseline=n_base or None,
            n_history=[n_of(p) or 0.0 for p in there] if evidence else None,
        )
        out[start] = (bound.centre, bound.bound)
    if key is not None:
        data.bands[key] = out
    if memo_key is not None:
        data.memo_out[memo_key] = memo.entry(fingerprint, inputs, out)
    return out


def _evidence(data: ReportData, n_metric: str, metric: str, labels: dict[str, str]) -> list[tuple[int, Points]]:
    """The series of `n_metric` that can be the n behind the series (aimon.matchers.
    evidence_matches, as aimon.tasks.alerts.rules.evidence picks them), with how many
    labels they have."""
    out = []
    for flj, pts in data.figures.get(n_metric, {}).items():
        fl = data.labels[flj]
        if evidence_matches(metric, labels, fl):
            out.append((len(fl), pts))
    return out


def _n(evidence: list[tuple[int, Points]], start: dt.datetime) -> float | None:
    """The most specific of those figures in the window."""
    best: tuple[int, float] | None = None
    for size, pts in evidence:
        v = pts.get(start)
        if v is not None and v == v and (best is None or size > best[0]):
            best = (size, v)
    return None if best is None else best[1]


def rule_traces(
    rule: AlertRule, data: ReportData, points: Points, labels: dict[str, str], xs: list[str], who: str = ""
) -> list[Trace]:
    """The rule's lines for one series (`who` names the series when a chart has several)."""
    suffix = f" ({who})" if who else ""
    out = []
    if rule.baseline is not None:
        band = baseline(rule, data, points, labels)
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
    """The windows where an alert on one of these series was firing (recovering and
    folded alerts are firing too: still open, or sent within another's notification)
    or pending."""
    wanted = {labels_json(s) for s in series}
    status: dict[dt.datetime, str] = {}
    for e in data.events:
        if e.metric != metric or e.labels not in wanted or e.status not in MARKED:
            continue
        shown = MARKED[e.status]
        if status.get(e.window_start) != "firing":
            status[e.window_start] = shown
    ends = {w.start: w.end for w in data.windows}
    return [Mark(data.x(s), data.x(ends.get(s, s)), st) for s, st in sorted(status.items())]
