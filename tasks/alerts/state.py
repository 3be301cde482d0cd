"""Alert state transitions: inactive -> pending -> firing -> resolved, and silences.

`transition` turns a judgement (rules.py) and the alert's stored state (the tables
are aimon.store.alerts) into the new state, the window's alert event and whether the
route must hear about it (fired, resolved, repeat), with `resolve_after` (a firing
alert resolves only after that many windows back within bounds) and the repeat timing
counted in windows. It is kept apart from the
judging so the state machine can be read, and tested, on its own; `silenced_by` is
shared with the `aimon alerts` CLI, which shows the same silence the run applies.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from aimon.config.alerts import AlertRule
from aimon.matchers import Matcher
from aimon.store.alerts import AlertEvent, AlertState, Silence
from aimon.tasks.alerts.rules import Judgement
from aimon.windows import Window, window_containing


def alert_id(rule: str, granularity: str, labels: str) -> str:
    return hashlib.sha1(f"{rule}\x00{granularity}\x00{labels}".encode()).hexdigest()


def alert_labels(rule: AlertRule, labels: Mapping[str, str], granularity: str) -> dict[str, str]:
    """What a silence matches on: the figure's labels plus the alert's own."""
    return {
        **labels,
        "alertname": rule.name,
        "severity": rule.severity,
        "metric": rule.metric,
        "route": rule.route,
        "granularity": granularity,
    }


def silenced_by(silences: Sequence[Silence], labels: Mapping[str, str]) -> str | None:
    for s in silences:
        if all(Matcher.parse(m).matches(labels) for m in s.matchers):
            return s.silence_id
    return None


@dataclass(frozen=True)
class Transition:
    state: AlertState
    event: AlertEvent | None  # None: nothing to record in this window (inactive, untouched)
    notify: str | None  # firing | resolved | None
    repeat: bool = False
    firing_windows: int = 0  # firing: windows since it fired, this one included ("day 3")
    folded_from: str | None = None  # the alert it was folded into in the window before


def windows_apart(a: dt.datetime, b: dt.datetime, granularity: str) -> int:
    """How many windows of `granularity` lie from the window starting at `a` to the one
    starting at `b` (rounded, so a daily window of 23 or 25 hours counts as one)."""
    step = dt.timedelta(days=1) if granularity == "daily" else dt.timedelta(hours=1)
    return round((b - a) / step)


def _behind(prev: AlertState, start: dt.datetime, resolve_after: int) -> tuple[bool, bool]:
    """(was firing, recovering) of a within-bounds window at `start`, behind the state."""
    if prev.active_since is None or prev.active_since >= start:
        return False, False  # the alert's streak began later
    if prev.status == "firing":
        # The streak went on after this window: with resolve_after 1 this window had
        # resolved it (and it fired again), with more it only counted towards it.
        return True, resolve_after > 1
    resolved = prev.resolved_window_start
    if prev.status in ("resolved", "inactive") and resolved is not None and start <= resolved:
        return True, start < resolved
    return False, False


def transition(
    j: Judgement,
    prev: AlertState | None,
    window: Window,
    run_id: str,
    *,
    silence: str | None,
    repeat_interval: dt.timedelta | None = None,
    repeat_windows: int = 3,
    resolve_after: int = 1,
    provisional: bool = False,
) -> Transition | None:
    """The new state of one alert, and whether its route must hear about it.

    A window older than the one the state last saw only records its event (a backfill
    behind the live runs); a rerun of the same window re-derives the state and finds
    the route already told, so it sends nothing twice.

    Only a figure back within bounds resolves: a series with no figure (None, NaN) or
    too little baseline history is not judged, and neither is a within-bounds figure
    of a `provisional` window (one that has not ended: its figures so far may breach,
    but cannot say the window was fine). Each leaves the state as it was.

    A firing alert resolves only after `resolve_after` consecutive judged windows back
    within bounds; until then it stays firing, and the window's event says
    "recovering". The count is kept in the state (`ok_windows`), and a rerun of the
    window the state last saw re-derives it from the count before that window.
    A still-firing alert is re-sent after `repeat_windows` windows since the route was
    last told (or, when given, `repeat_interval` of window time); never from a
    recovering window. Folding (folding.py) is applied on top, per window: a folded
    state is read here as the firing one it is."""
    rule = j.rule
    lj = j.labels_json
    aid = alert_id(rule.name, window.granularity, lj)
    stored = prev
    if prev is not None and prev.status == "folded":
        prev = replace(prev, status="firing", folded_into=None)
    state = j.state
    recovering = False
    ok_windows = 0
    note = None
    if state == "ok":
        if prev is None:
            return None
        if provisional or not j.judged:
            return None  # not judged: the state stands
        if prev.last_window_start > window.start:
            # A rerun of a window behind the state: within bounds in the alert's streak
            # (begun before it) is "recovering" if the streak went on or resolved later,
            # "resolved" if it resolved in this very window; else nothing to record.
            was_firing, recovering = _behind(prev, window.start, resolve_after)
            note = "recovering: back within bounds" if recovering else None
        elif prev.status == "inactive":
            return None
        else:
            was_firing = prev.status == "firing" or (
                prev.status == "resolved" and prev.last_window_start == window.start
            )
        if was_firing and prev.last_window_start <= window.start:
            rerun = prev.last_window_start == window.start
            before_this = max(prev.ok_windows - 1, 0) if rerun else prev.ok_windows
            ok_windows = before_this + 1
            if ok_windows < resolve_after:
                recovering = True
                note = f"recovering: {ok_windows} of {resolve_after} windows back within bounds"
        new_status = ("firing" if recovering else "resolved") if was_firing else "inactive"
    else:
        new_status = state
    since = j.streak_start
    before = window_containing(window.start - dt.timedelta(microseconds=1), window.granularity, window.timezone)
    if (
        new_status == "pending"
        and prev is not None
        and prev.status == "firing"
        and prev.last_window_start in (window.start, before.start)
    ):
        # Once firing, an alert fires while it breaches, even if the history behind the
        # `for` count has a gap now (a failed run's window, a raised `for`).
        new_status = "firing"
    if (
        prev is not None
        and prev.status in ("pending", "firing")
        and new_status in ("pending", "firing")
        and prev.active_since is not None
        and prev.last_window_start in (window.start, before.start)
    ):
        # The streak goes on: keep when it began (history only counts back `for` windows).
        since = min(prev.active_since, since or prev.active_since)
    if recovering and prev is not None:
        since = prev.active_since
    event = None
    if new_status != "inactive":
        event = AlertEvent(
            window.start,
            window.end,
            window.granularity,
            rule.name,
            lj,
            rule.metric,
            rule.severity,
            rule.route,
            "recovering" if recovering else new_status,
            j.value,
            j.condition.bound,
            since if new_status != "resolved" else (prev.active_since if prev else None),
            silence,
            run_id,
            note=note,
        )
    if stored is not None and stored.last_window_start > window.start:
        return Transition(stored, event, None)  # historical: recorded, state untouched

    notify = None
    repeat = False
    notified_status = prev.notified_status if prev else None
    last_notified = prev.last_notified_window_start if prev else None
    fired = prev.fired_window_start if prev and prev.status == "firing" else None
    resolved_at = prev.resolved_window_start if prev else None
    if new_status == "firing":
        fired = fired or window.start
        if recovering:
            pass  # back within bounds: neither a first notice nor a repeat
        elif notified_status != "firing":
            notify = "firing"
        elif last_notified is not None:
            if repeat_interval is not None:
                due = window.start - last_notified >= repeat_interval
            else:
                due = windows_apart(last_notified, window.start, window.granularity) >= repeat_windows
            if due:
                notify, repeat = "firing", True
    elif new_status == "resolved":
        resolved_at = window.start if prev is None or prev.status != "resolved" else prev.resolved_window_start
        if notified_status == "firing":
            notify = "resolved"
    if silence is not None:
        notify = None
    if notify is not None:
        notified_status, last_notified = notify, window.start
    new = AlertState(
        aid,
        rule.name,
        window.granularity,
        lj,
        rule.metric,
        rule.severity,
        rule.route,
        new_status,
        j.value,
        j.condition.bound,
        since if new_status in ("pending", "firing") else (prev.active_since if prev else None),
        window.start,
        fired,
        resolved_at,
        notified_status,
        last_notified,
        run_id,
        ok_windows=ok_windows if new_status in ("firing", "resolved") else 0,
    )
    firing_windows = windows_apart(fired, window.start, window.granularity) + 1 if fired else 0
    folded_from = stored.folded_into if stored is not None and stored.status == "folded" else None
    return Transition(new, event, notify, repeat, firing_windows, folded_from)
