"""What a rule is judged on besides the window's own figures, read from the store: the
series' previous windows, the figures its `min_sample` and `unless` name, and the
earlier windows where its alert was pending or firing (left out of its baseline).

rules.py stays a pure function of these; alert_window (pipeline.py) reads them here.
Everything comes from stored figures and the recorded alert events of windows before
the judged one, never from the current alert state, so a rerun judges a window the
same way, and a backfill run oldest first (orchestration.backfill_order) does too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from aimon.config.alerts import AlertRule
from aimon.records import labels_json
from aimon.store.alerts import AlertEvent
from aimon.store.metrics import Store
from aimon.tasks.alerts.rules import Judgement, history_span, previous_windows
from aimon.windows import Window

# Event statuses that mean the series breached in that window: not a baseline window.
ALERTING = ("pending", "firing", "folded")


@dataclass(frozen=True)
class RuleInputs:
    prev: list[Window]
    history: dict[tuple[str, dt.datetime], float]
    context: dict[str, dict[dt.datetime, list[tuple[dict[str, str], float]]]]
    alerting: frozenset[tuple[str, dt.datetime]]


def max_span(rules: Sequence[AlertRule]) -> int:
    return max((history_span(r) for r in rules), default=0)


def rule_inputs(store: Store, events: Sequence[AlertEvent], rule: AlertRule, window: Window) -> RuleInputs:
    """`events`: the recorded alert events of the windows before `window` (at least
    `history_span(rule)` of them back), of every rule."""
    span = history_span(rule)
    prev = previous_windows(window, span)
    first = prev[-1].start if span else window.start
    history: dict[tuple[str, dt.datetime], float] = {}
    if span:
        for f in store.figures(
            granularity=window.granularity, metric=rule.metric, start_from=first, before=window.start
        ):
            history[(labels_json(f.labels), f.window_start)] = f.value
    wanted = {u.metric for u in rule.unless} | ({rule.min_sample.metric} if rule.min_sample else set())
    context: dict[str, dict[dt.datetime, list[tuple[dict[str, str], float]]]] = {}
    for metric in sorted(wanted):
        by_start = context.setdefault(metric, {})
        for f in store.figures(granularity=window.granularity, metric=metric, start_from=first, before=window.end):
            by_start.setdefault(f.window_start, []).append((f.labels, f.value))
    alerting = frozenset(
        (e.labels, e.window_start)
        for e in events
        if e.rule == rule.name and e.status in ALERTING and first <= e.window_start < window.start
    )
    return RuleInputs(prev, history, context, alerting)


def not_judged_notes(rule: AlertRule, judgements: Sequence[Judgement], show: int = 3) -> list[str]:
    """One run-summary line per reason a rule left series unjudged, naming a few."""
    notes: list[str] = []
    short = [j for j in judgements if j.condition.note and not j.condition.note.startswith("not judged:")]
    if short and rule.baseline is not None:
        notes.append(
            f"alert rule {rule.name}: {len(short)} of {len(judgements)} series have fewer than "
            f"{rule.baseline.needed} of the previous {rule.baseline.windows} windows stored: "
            "no baseline, not judged (backfill earlier windows to judge them)"
        )
    other: dict[str, list[Judgement]] = {}
    for j in judgements:
        note = j.condition.note or ""
        if note.startswith("not judged:"):
            other.setdefault("unless" if note.endswith("(unless)") else "min_sample", []).append(j)
    for kind, these in sorted(other.items()):
        named = "; ".join(
            f"{{{', '.join(f'{k}={v}' for k, v in j.labels)}}} {(j.condition.note or '').removeprefix('not judged: ')}"
            for j in these[:show]
        )
        more = f"; and {len(these) - show} more" if len(these) > show else ""
        notes.append(
            f"alert rule {rule.name}: {len(these)} of {len(judgements)} series not judged ({kind}): {named}{more}"
        )
    excluded = [j for j in judgements if j.condition.excluded]
    if excluded:
        notes.append(
            f"alert rule {rule.name}: {len(excluded)} series judged against a baseline without the windows "
            "where their alert was pending or firing"
        )
    return notes
