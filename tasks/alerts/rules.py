"""Judging alert rules against one window's figures.

A rule's condition is a threshold, a baseline (a bound derived from the median of
the same series in the previous windows), or both; `for` asks that it hold for that
many consecutive windows. Both the baseline and the `for` count are read from the
metrics table's history, never from alert state, so a rerun or an out-of-order
backfill judges a window the same way every time. Pure functions of the figures:
no store, no config loading, no sending.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aimon.config.alerts import AlertRule
from aimon.matchers import Matcher, matches_all
from aimon.records import labels_json
from aimon.windows import Window, window_containing

_CMP: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


@dataclass(frozen=True)
class Condition:
    """The outcome of a rule's condition on one value, with what it was compared to."""

    breaching: bool
    threshold: float | None
    bound: float | None  # the value compared against: the threshold, or the baseline-derived bound
    baseline: float | None = None  # median of the previous windows
    baseline_windows: int = 0  # how many windows that median is over
    note: str | None = None  # why the rule could not judge (too little history)


def judge(rule: AlertRule, value: float, history: Sequence[float]) -> Condition:
    """`history`: the same series in the previous windows (most recent first, absent
    windows left out), at most `baseline.windows` of them."""
    cmp = _CMP[rule.op]
    ok_threshold = rule.threshold is None or cmp(value, rule.threshold)
    if rule.baseline is None:
        return Condition(ok_threshold, rule.threshold, rule.threshold)
    if len(history) < rule.baseline.min_windows:
        return Condition(
            False,
            rule.threshold,
            None,
            None,
            len(history),
            f"{len(history)} of the {rule.baseline.min_windows} previous windows needed for a baseline",
        )
    median = float(statistics.median(history))
    bound = rule.baseline_bound(median)
    return Condition(ok_threshold and cmp(value, bound), rule.threshold, bound, median, len(history))


@dataclass(frozen=True)
class Judgement:
    """One series of one rule in one window."""

    rule: AlertRule
    labels: tuple[tuple[str, str], ...]
    value: float | None  # None: the series is absent from this window
    condition: Condition
    streak: int  # consecutive breaching windows ending with this one (counted up to `for`)
    streak_start: dt.datetime | None  # start of the earliest window of that streak

    @property
    def labels_json(self) -> str:
        return labels_json(dict(self.labels))

    @property
    def judged(self) -> bool:
        """False when there was nothing to judge: no figure (None, NaN), or too little
        history for the baseline. Such a judgement never resolves an alert."""
        return self.value is not None and self.value == self.value and self.condition.note is None

    @property
    def state(self) -> str:
        if not self.condition.breaching:
            return "ok"
        return "firing" if self.streak >= self.rule.for_windows else "pending"


def previous_windows(window: Window, n: int) -> list[Window]:
    """The n windows before `window`, most recent first."""
    out: list[Window] = []
    w = window
    for _ in range(n):
        w = window_containing(w.start - dt.timedelta(microseconds=1), w.granularity, w.timezone)
        out.append(w)
    return out


def history_span(rule: AlertRule) -> int:
    """How many previous windows the rule reads: its baseline for this window and for
    each of the `for - 1` windows before it."""
    return (rule.baseline.windows if rule.baseline else 0) + rule.for_windows - 1


def evaluate_rule(
    rule: AlertRule,
    window: Window,
    current: Sequence[tuple[dict[str, str], float]],
    history: Mapping[tuple[str, dt.datetime], float],
    prev: Sequence[Window],
) -> list[Judgement]:
    """Judge every series of `rule.metric` in `current` that the rule's matchers select.

    `history[(labels_json, window_start)]` holds the figure in earlier windows and
    `prev` the windows before `window`, most recent first (`history_span(rule)` long)."""
    matchers = [Matcher.from_config(k, v) for k, v in rule.labels.items()]
    nb = rule.baseline.windows if rule.baseline else 0
    out = []
    for labels, value in current:
        if value != value or not matches_all(matchers, labels):  # NaN: no figure to judge
            continue
        lj = labels_json(labels)

        def past(i: int, lj: str = lj) -> list[float]:
            # The baseline of the window i steps back (0: this window): the nb windows before it.
            return [history[(lj, w.start)] for w in prev[i : i + nb] if (lj, w.start) in history]

        cond = judge(rule, value, past(0))
        streak, since = (1, window.start) if cond.breaching else (0, None)
        if cond.breaching:
            for i in range(rule.for_windows - 1):
                w = prev[i]
                v = history.get((lj, w.start))
                if v is None or not judge(rule, v, past(i + 1)).breaching:
                    break
                streak, since = streak + 1, w.start
        out.append(Judgement(rule, tuple(sorted(labels.items())), value, cond, streak, since))
    return out
