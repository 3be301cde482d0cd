"""Judging alert rules against one window's figures.

A rule's condition is a threshold, a baseline (a bound from the same series in the
previous windows: a ratio of their median, or learned from their spread), or both;
`for` asks that it hold for that many consecutive windows. A series is not judged
(never fires, never resolves) when `unless` holds, when the n behind it is under
`min_sample`, or when its baseline has too few windows. The baseline, the `for` count,
the evidence and the `unless` figures are read from the metrics table's history, and
the windows left out of a baseline (where the series' alert was pending or firing) from
the recorded alert events of earlier windows, never from the current alert state, so a
rerun or an oldest-first backfill judges a window the same way every time. Pure
functions of what the pipeline passes in: no store, no config loading, no sending.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from aimon.config.alerts import AlertRule
from aimon.matchers import Matcher, evidence_matches, matches_all
from aimon.records import labels_json
from aimon.windows import Window, phase_of

# Re-exported: the alert tasks and their tests take the previous windows from here.
from aimon.windows import previous_windows as previous_windows

_CMP: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}

# Figures of other metrics (min_sample's, unless's) by metric, then window start.
Context = Mapping[str, Mapping[dt.datetime, Sequence[tuple[dict[str, str], float]]]]


@dataclass(frozen=True)
class Condition:
    """The outcome of a rule's condition on one value, with what it was compared to."""

    breaching: bool
    threshold: float | None
    bound: float | None  # the value compared against: the threshold, or the baseline-derived bound
    baseline: float | None = None  # the centre of the previous windows (their median)
    baseline_windows: int = 0  # how many windows that centre is over
    note: str | None = None  # why the rule could not judge ("not judged: ...", too little history)
    spread: float | None = None  # learned: the robust sigma of the series' windows
    n: float | None = None  # the min_sample figure behind the value
    excluded: int = 0  # baseline windows left out because the series' alert was pending/firing


def judge(
    rule: AlertRule,
    value: float,
    history: Sequence[float],
    *,
    phases: Sequence[int] | None = None,
    phase: int | None = None,
    n: float | None = None,
    n_baseline: float | None = None,
    n_history: Sequence[float] | None = None,
) -> Condition:
    """`history`: the same series in the previous windows (most recent first, absent
    windows left out), at most `baseline.windows` of them; `phases` their weekday (daily)
    or hour (hourly) and `phase` this window's, for a seasonal learned baseline; `n` the
    min_sample figure behind `value` and `n_baseline` the total behind `history`
    (`n_history`: each value's), for `uncertainty: binomial`."""
    cmp = _CMP[rule.op]
    ok_threshold = rule.threshold is None or cmp(value, rule.threshold)
    if rule.baseline is None:
        return Condition(ok_threshold, rule.threshold, rule.threshold, n=n)
    if len(history) < rule.baseline.needed and rule.baseline.short_history == "threshold":
        return Condition(ok_threshold, rule.threshold, rule.threshold, baseline_windows=len(history), n=n)
    if len(history) < rule.baseline.needed:
        return Condition(
            False,
            rule.threshold,
            None,
            None,
            len(history),
            f"{len(history)} of the {rule.baseline.needed} previous windows needed for a baseline",
            n=n,
        )
    b = rule.bound_of(
        list(history),
        phases=list(phases) if phases is not None else None,
        phase=phase,
        n=n,
        n_baseline=n_baseline,
        n_history=list(n_history) if n_history is not None else None,
    )
    return Condition(
        ok_threshold and cmp(value, b.bound), rule.threshold, b.bound, b.centre, len(history), spread=b.spread, n=n
    )


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


def history_span(rule: AlertRule) -> int:
    """How many previous windows the rule reads: its baseline for this window (up to
    `baseline.span` back, to replace windows left out while the alert was on) and for
    each of the `for - 1` windows before it."""
    return (rule.baseline.span if rule.baseline else 0) + rule.for_windows - 1


def evidence(metric: str, labels: Mapping[str, str], figures: Sequence[tuple[dict[str, str], float]]) -> float | None:
    """The n behind a series of `metric`: the figure whose every label the series carries
    with the same value (a `metric` label the series lacks must name `metric`, as
    quality_sample_size{metric=...} does); the most specific one when several match."""
    best: tuple[int, float] | None = None
    for fl, v in figures:
        if evidence_matches(metric, labels, fl) and v == v and (best is None or len(fl) > best[0]):
            best = (len(fl), v)
    return None if best is None else best[1]


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:.4g}"


def _not_judged(
    rule: AlertRule, labels: Mapping[str, str], ctx: Context, start: dt.datetime
) -> tuple[str | None, float | None]:
    """Why the series is not judged in the window starting at `start` (unless, min_sample),
    and the n behind it."""
    for u in rule.unless:
        if u.series and not matches_all([Matcher.from_config(k, x) for k, x in u.series.items()], labels):
            continue
        for fl, v in ctx.get(u.metric, {}).get(start, ()):
            if v > 0 and all(fl.get(k, "") == labels.get(k, "") for k in u.equal):
                shown = ", ".join(f"{k}={x}" for k, x in sorted(fl.items()))
                return f"not judged: {u.metric}{{{shown}}} = {_fmt(v)} (unless)", None
    ms = rule.min_sample
    if ms is None:
        return None, None
    n = evidence(rule.metric, labels, ctx.get(ms.metric, {}).get(start, ()))
    if n is None:
        return f"not judged: no {ms.metric} figure for this series (min_sample {_fmt(ms.value)})", None
    if n < ms.value:
        return f"not judged: {ms.metric} = {_fmt(n)}, under min_sample {_fmt(ms.value)}", n
    return None, n


def evaluate_rule(
    rule: AlertRule,
    window: Window,
    current: Sequence[tuple[dict[str, str], float]],
    history: Mapping[tuple[str, dt.datetime], float],
    prev: Sequence[Window],
    *,
    context: Context | None = None,
    alerting: Collection[tuple[str, dt.datetime]] = frozenset(),
) -> list[Judgement]:
    """Judge every series of `rule.metric` in `current` that the rule's matchers select.

    `history[(labels_json, window_start)]` holds the figure in earlier windows and
    `prev` the windows before `window`, most recent first (`history_span(rule)` long).
    `context[metric][window_start]`: the figures of the rule's min_sample and unless
    metrics, in this window and the earlier ones. `alerting`: the (labels_json,
    window_start) of earlier windows where this rule's alert on that series was pending
    or firing; with `baseline.exclude_alerting` they are left out of its baseline and
    older windows taken instead (up to `baseline.span` back). With `min_sample`, a
    baseline window under it counts as absent: a weekend's six feedback rows would
    otherwise set the series' learned spread and hide a real weekday drop."""
    matchers = [Matcher.from_config(k, v) for k, v in rule.labels.items()]
    b = rule.baseline
    nb = b.windows if b else 0
    span = b.span if b else 0
    skip = alerting if b is not None and b.exclude_alerting else frozenset()
    ctx: Context = context or {}
    seasonal = b is not None and b.method == "learned" and b.seasonal
    out = []
    for labels, value in current:
        if value != value or not matches_all(matchers, labels):  # NaN: no figure to judge
            continue
        lj = labels_json(labels)

        def at(v: float, start: dt.datetime, i: int, lj: str = lj, labels: dict[str, str] = labels) -> Condition:
            # Judge value v of the window starting at `start`, whose previous windows are prev[i:].
            note, n = _not_judged(rule, labels, ctx, start)
            if note is not None:
                return Condition(False, rule.threshold, None, note=note, n=n)
            vals, phases, ns, n_base, left_out, slots = [], [], [], 0.0, 0, 0
            for w in prev[i : i + span]:
                if slots == nb:
                    break
                if (lj, w.start) in skip:
                    left_out += 1
                    continue
                slots += 1
                if (lj, w.start) in history:
                    nw = None
                    if rule.min_sample is not None:
                        nw = evidence(rule.metric, labels, ctx.get(rule.min_sample.metric, {}).get(w.start, ()))
                        if nw is None or nw < rule.min_sample.value:
                            continue  # a thin window (not judged itself) says nothing of the normal spread
                    vals.append(history[(lj, w.start)])
                    phases.append(phase_of(w.start, w.granularity, w.timezone))
                    ns.append(nw or 0.0)
                    n_base += nw or 0.0
            cond = judge(
                rule,
                v,
                vals,
                phases=phases if seasonal else None,
                phase=phase_of(start, window.granularity, window.timezone) if seasonal else None,
                n=n,
                n_baseline=n_base or None,
                n_history=ns if rule.min_sample is not None else None,
            )
            return replace(cond, excluded=left_out) if left_out else cond

        cond = at(value, window.start, 0)
        streak, since = (1, window.start) if cond.breaching else (0, None)
        if cond.breaching:
            for i in range(rule.for_windows - 1):
                w = prev[i]
                v = history.get((lj, w.start))
                if v is None or not at(v, w.start, i + 1).breaching:
                    break
                streak, since = streak + 1, w.start
        out.append(Judgement(rule, tuple(sorted(labels.items())), value, cond, streak, since))
    return out
