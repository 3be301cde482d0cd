"""Alert rules -> alert state -> grouped notifications in the outbox -> channels.

The model is Prometheus Alertmanager's (pending -> firing -> resolved, grouping per
route, silences, repeat interval, at-least-once delivery), computed per window:

1. `evaluate_rule` judges each series a rule matches in the window's figures: the
   condition (a threshold, a baseline from the metrics table's history, or both) and
   how many consecutive windows it has held (`for`), read from the same history, so a
   rerun or an out-of-order backfill judges a window the same way every time.
2. `transition` turns a judgement and the stored state into the new state and, where
   the route must hear about it, a notification item (fired, resolved, repeat).
3. `alert_window` commits states, the window's alert events and the grouped outbox
   entries (one per route and channel) in one transaction, then `deliver` sends what
   is due. A rerun of a window finds its notifications already told and sends nothing.

Notifications carry figure names, label values, numbers and windows only: never
prompts, responses, references or user ids (none of them is ever a metric label).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import statistics
import string
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from aimon.config import Config
from aimon.config.alerts import SEVERITIES, AlertRule, AlertsConfig
from aimon.matchers import Matcher, matches_all
from aimon.records import ALL, labels_json
from aimon.store.alerts import AlertEvent, AlertState, AlertStore, OutboxEntry, Silence, utcnow
from aimon.store.metrics import Store
from aimon.tasks.alerts.channels import Channel, SendError, build_channel, mask
from aimon.tasks.alerts.render import describe_condition, fmt_value
from aimon.tasks.orchestration.run import RunHandle, RunSummary
from aimon.windows import Window, window_containing

log = logging.getLogger("aimon.alerts")

_CMP: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}
# Metrics a failed run still writes; the only ones judged when a run fails.
RUN_META_METRICS = frozenset({"monitoring_run_success", "monitoring_run_duration_seconds"})


# -- judging one window ---------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """The outcome of a rule's condition on one value, with what it was compared to."""

    breaching: bool
    threshold: float | None
    bound: float | None  # the value compared against: the threshold, or the baseline-derived bound
    baseline: float | None = None  # median of the previous windows
    baseline_windows: int = 0  # how many windows that median is over
    note: str | None = None  # why the rule could not judge (too little history)


def baseline_bound(rule: AlertRule, median: float) -> float:
    b = rule.baseline
    assert b is not None
    if b.factor is not None:
        return median * b.factor
    pct = (b.percent or 0.0) / 100.0
    return median * (1 + pct) if rule.op in (">", ">=") else median * (1 - pct)


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
    bound = baseline_bound(rule, median)
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


# -- state machine ----------------------------------------------------------------------


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


def transition(
    j: Judgement,
    prev: AlertState | None,
    window: Window,
    run_id: str,
    *,
    repeat_interval: dt.timedelta,
    silence: str | None,
) -> Transition | None:
    """The new state of one alert, and whether its route must hear about it.

    A window older than the one the state last saw only records its event (a backfill
    behind the live runs); a rerun of the same window re-derives the state and finds
    the route already told, so it sends nothing twice."""
    rule = j.rule
    lj = j.labels_json
    aid = alert_id(rule.name, window.granularity, lj)
    state = j.state
    if state == "ok":
        if prev is None or prev.status == "inactive":
            return None
        was_firing = prev.status == "firing" or (prev.status == "resolved" and prev.last_window_start == window.start)
        new_status = "resolved" if was_firing else "inactive"
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
            new_status,
            j.value,
            j.condition.bound,
            since if new_status != "resolved" else (prev.active_since if prev else None),
            silence,
            run_id,
        )
    if prev is not None and prev.last_window_start > window.start:
        return Transition(prev, event, None)  # historical: recorded, state untouched

    notify = None
    repeat = False
    notified_status = prev.notified_status if prev else None
    last_notified = prev.last_notified_window_start if prev else None
    fired = prev.fired_window_start if prev and prev.status == "firing" else None
    resolved_at = prev.resolved_window_start if prev else None
    if new_status == "firing":
        fired = fired or window.start
        if notified_status != "firing":
            notify = "firing"
        elif last_notified is not None and window.start - last_notified >= repeat_interval:
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
    )
    return Transition(new, event, notify, repeat)


# -- notification payloads ----------------------------------------------------------------


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def render_summary(j: Judgement, window: Window) -> str:
    rule = j.rule
    # A roll-up reads as words in a sentence: endpoint="__all__" -> "all endpoints".
    labels = {k: (f"all {k}s" if v == ALL else v) for k, v in j.labels}
    default = f"{rule.metric}{{{', '.join(f'{k}={v}' for k, v in j.labels)}}} = {fmt_value(rule.metric, j.value)}"
    if not rule.summary:
        return default
    c = j.condition
    fields = _Fields(
        {
            **labels,
            "rule": rule.name,
            "metric": rule.metric,
            "severity": rule.severity,
            "value": j.value if j.value is not None else float("nan"),
            "threshold": c.threshold if c.threshold is not None else float("nan"),
            "bound": c.bound if c.bound is not None else float("nan"),
            "baseline": c.baseline if c.baseline is not None else float("nan"),
            "labels": ", ".join(f"{k}={v}" for k, v in j.labels),
            "window": window.label,
        }
    )
    try:
        return string.Formatter().vformat(rule.summary, (), fields)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
        log.warning("rule %s: summary template failed (%s); using the default summary", rule.name, err)
        return default


def notification_item(j: Judgement, t: Transition, window: Window) -> dict[str, Any]:
    rule, c = j.rule, j.condition
    return {
        "alert_id": t.state.alert_id,
        "rule": rule.name,
        "status": t.notify,
        "repeat": t.repeat,
        "severity": rule.severity,
        "metric": rule.metric,
        "labels": dict(j.labels),
        "value": j.value,
        "value_text": fmt_value(rule.metric, j.value),
        "condition": describe_condition(rule, c.bound, c.baseline, c.baseline_windows),
        "summary": render_summary(j, window),
        "since": t.state.active_since.isoformat() if t.state.active_since else None,
        "fired_window_start": t.state.fired_window_start.isoformat() if t.state.fired_window_start else None,
        "for_windows": rule.for_windows,
        "runbook": rule.runbook,
    }


def order_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Firing first, most severe first; then resolved; stable by rule and labels."""
    return sorted(
        items,
        key=lambda i: (
            i["status"] != "firing",
            SEVERITIES.index(i["severity"]),
            i["rule"],
            labels_json(i["labels"]),
        ),
    )


def outbox_entries(
    acfg: AlertsConfig,
    window: Window,
    run_id: str,
    items_by_route: Mapping[str, list[dict[str, Any]]],
    *,
    store_where: str,
    now: dt.datetime,
) -> list[OutboxEntry]:
    out = []
    for route_name, items in sorted(items_by_route.items()):
        if not items:
            continue
        items = order_items(items)
        digest = hashlib.sha1(
            "|".join(f"{i['alert_id']}:{i['status']}:{i['repeat']}" for i in items).encode()
        ).hexdigest()[:16]
        payload = {
            "route": route_name,
            "run_id": run_id,
            "granularity": window.granularity,
            "window": str(window),
            "window_label": window.label,
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
            "firing": sum(1 for i in items if i["status"] == "firing"),
            "resolved": sum(1 for i in items if i["status"] == "resolved"),
            "items": items,
            "link": acfg.link,
            "store": store_where,
        }
        for channel in acfg.route(route_name).channels:
            out.append(
                OutboxEntry(
                    uuid.uuid4().hex,
                    f"{route_name}|{channel}|{window.granularity}|{window.start:%Y-%m-%dT%H:%M}|{digest}",
                    now,
                    run_id,
                    route_name,
                    channel,
                    window.granularity,
                    window.start,
                    window.end,
                    payload,
                    expires_at=now + acfg.outbox_expiry,
                )
            )
    return out


# -- one window, end to end ----------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryReport:
    sent: tuple[str, ...] = ()  # "route -> channel"
    failed: tuple[str, ...] = ()  # "route -> channel: error" (still pending, retried next run)
    expired: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertReport:
    """What alerting did in one run, for the run summary."""

    firing: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    silenced: tuple[str, ...] = ()
    queued: int = 0
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    notes: tuple[str, ...] = ()
    sending: bool = True

    def lines(self) -> list[str]:
        out = [f"alert firing: {a}" for a in self.firing]
        out += [f"alert pending: {a}" for a in self.pending]
        out += [f"alert resolved: {a}" for a in self.resolved]
        out += [f"alert silenced: {a}" for a in self.silenced]
        d = self.delivery
        if not self.sending and self.queued == 0 and (self.firing or self.resolved):
            out.append("alerts recorded, not sent (historical window; pass --notify to send)")
        out += [f"notification sent: {s}" for s in d.sent]
        out += [f"notification failed (retried next run): {s}" for s in d.failed]
        out += [f"notification expired unsent: {s}" for s in d.expired]
        out += list(self.notes)
        return out


def _brief(j: Judgement) -> str:
    labels = ", ".join(f"{k}={v}" for k, v in j.labels)
    return f"{j.rule.name} {j.rule.metric}{{{labels}}} = {fmt_value(j.rule.metric, j.value)} ({j.rule.severity})"


def alert_window(
    cfg: Config,
    store: Store,
    window: Window,
    run_id: str,
    *,
    send: bool,
    only_metrics: frozenset[str] | None = None,
    now: dt.datetime | None = None,
    channels: Mapping[str, Channel] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> AlertReport:
    """Evaluate the rules on the window's stored figures, commit the new alert state
    with its notifications, and (when `send`) deliver what the outbox holds.

    `only_metrics`: judge just the rules on these metrics (a failed run has only its
    run-meta figures; the others are the previous run's and were judged then)."""
    acfg = cfg.alerts
    now = now or utcnow()
    if not acfg.enabled or not acfg.rules:
        return AlertReport(sending=send)
    astore = AlertStore(cfg)
    astore.ensure()
    rules = [
        r
        for r in acfg.rules
        if (r.granularity in (None, window.granularity)) and (only_metrics is None or r.metric in only_metrics)
    ]
    figures = store.figures(granularity=window.granularity, start_from=window.start, before=window.end)
    by_metric: dict[str, list[tuple[dict[str, str], float]]] = {}
    for f in figures:
        by_metric.setdefault(f.metric, []).append((f.labels, f.value))
    silences = astore.active_silences(now)
    notes: list[str] = []
    judged_rules: list[str] = []
    transitions: list[tuple[Judgement, Transition]] = []
    states = astore.states()
    for rule in rules:
        current = by_metric.get(rule.metric)
        if not current:
            continue  # the figure is absent in this window (analyzer off or failed): not judged
        judged_rules.append(rule.name)
        span = history_span(rule)
        prev = previous_windows(window, span)
        history: dict[tuple[str, dt.datetime], float] = {}
        if span:
            for f in store.figures(
                granularity=window.granularity, metric=rule.metric, start_from=prev[-1].start, before=window.start
            ):
                history[(labels_json(f.labels), f.window_start)] = f.value
        judgements = evaluate_rule(rule, window, current, history, prev)
        seen = {j.labels_json for j in judgements}
        short = sum(1 for j in judgements if j.condition.note)
        if short and rule.baseline is not None:
            notes.append(
                f"alert rule {rule.name}: {short} of {len(judgements)} series have fewer than "
                f"{rule.baseline.min_windows} of the previous {rule.baseline.windows} windows stored: "
                "no baseline, not judged (backfill earlier windows to judge them)"
            )
        # A series that was pending or firing and has vanished from this window is no longer breaching.
        for s in states.values():
            if (
                s.rule == rule.name
                and s.granularity == window.granularity
                and s.status in ("pending", "firing")
                and s.labels not in seen
            ):
                judgements.append(
                    Judgement(rule, tuple(sorted(s.labels_dict.items())), None, Condition(False, None, None), 0, None)
                )
        for j in judgements:
            prev_state = states.get(alert_id(rule.name, window.granularity, j.labels_json))
            silence = silenced_by(silences, alert_labels(rule, dict(j.labels), window.granularity))
            t = transition(j, prev_state, window, run_id, repeat_interval=acfg.repeat_interval, silence=silence)
            if t is not None:
                transitions.append((j, t))

    items: dict[str, list[dict[str, Any]]] = {}
    for j, t in transitions:
        if t.notify is not None and send:
            items.setdefault(j.rule.route, []).append(notification_item(j, t, window))
    entries = outbox_entries(acfg, window, run_id, items, store_where=store.where, now=now)
    # Not sending (a historical window): the route was not told, so the state must
    # not say it was; the first live run that still sees the alert firing tells it.
    new_states = [
        t.state if send or t.notify is None else _untold(t.state, states.get(t.state.alert_id)) for _, t in transitions
    ]
    queued = astore.commit_evaluation(
        window_start=window.start,
        granularity=window.granularity,
        rules=judged_rules,
        states=new_states,
        events=[t.event for _, t in transitions if t.event is not None],
        outbox=entries,
    )
    delivery = deliver(cfg, astore, now=now, channels=channels, sleep=sleep) if send else DeliveryReport()

    def status_of(t: Transition) -> str:
        return t.event.status if t.event is not None else t.state.status

    def muted_by(t: Transition) -> str | None:
        return t.event.silenced_by if t.event is not None else None

    return AlertReport(
        firing=tuple(_brief(j) for j, t in transitions if status_of(t) == "firing" and not muted_by(t)),
        pending=tuple(_brief(j) for j, t in transitions if status_of(t) == "pending"),
        resolved=tuple(
            _brief(j)
            for j, t in transitions
            if status_of(t) == "resolved" and (t.notify == "resolved" or t.state.resolved_window_start == window.start)
        ),
        silenced=tuple(
            f"{_brief(j)} by silence {muted_by(t)}" for j, t in transitions if status_of(t) == "firing" and muted_by(t)
        ),
        queued=queued,
        delivery=delivery,
        notes=tuple(notes),
        sending=send,
    )


def _untold(new: AlertState, prev: AlertState | None) -> AlertState:
    return replace(
        new,
        notified_status=prev.notified_status if prev else None,
        last_notified_window_start=prev.last_notified_window_start if prev else None,
    )


# -- delivery ------------------------------------------------------------------------------


def deliver(
    cfg: Config,
    astore: AlertStore,
    *,
    now: dt.datetime | None = None,
    channels: Mapping[str, Channel] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Send every pending outbox entry (this run's and earlier runs' failures).

    Transient failures (connection refused, timeouts, 429, 5xx) are retried within the
    run with exponential backoff; whatever still fails stays pending, with its error,
    for the next run, until it expires. An entry is marked sent only after the channel
    accepted it, so a crash in between can re-send once (at least once), never lose."""
    acfg = cfg.alerts
    now = now or utcnow()
    owner = uuid.uuid4().hex
    # Long enough for every attempt with its backoff and timeouts; a run that dies
    # holding a lease frees the entry when it runs out.
    lease = dt.timedelta(seconds=acfg.send_attempts * (60 + acfg.retry_backoff_seconds * 2**acfg.send_attempts))
    built: dict[str, Channel] = dict(channels or {})
    sent, failed, expired = [], [], []
    down: dict[str, str] = {}  # channel -> error: not tried again in this run
    for e in astore.due():
        where = f"{e.route} -> {e.channel} ({e.window_start:%Y-%m-%d %H:%M} {e.granularity})"
        if e.expires_at is not None and now >= e.expires_at:
            astore.mark(e.outbox_id, "expired", attempts=e.attempts, error=e.last_error, now=now)
            expired.append(where)
            log.error("notification %s expired unsent after %d attempts: %s", where, e.attempts, e.last_error)
            continue
        if e.channel in down:
            # One run does not hammer a channel that just failed every retry; the
            # entry stays pending, untouched, for the next run.
            failed.append(f"{where}: not tried, {e.channel} failed earlier in this run")
            continue
        if not astore.claim(e.outbox_id, owner, now, lease):
            continue  # another run is sending it right now, or has just sent it
        attempts = e.attempts
        error: str | None = None
        transient = True
        try:
            ch = built.get(e.channel)
            if ch is None:
                if e.channel not in acfg.channels:
                    raise SendError(f"channel {e.channel!r} is no longer configured", transient=False)
                ch = built[e.channel] = build_channel(e.channel, acfg.channels[e.channel])
            for i in range(acfg.send_attempts):
                attempts += 1
                try:
                    ch.send(e.payload)
                    error = None
                    break
                except SendError as err:
                    error, transient = str(err), err.transient
                    if not err.transient or i == acfg.send_attempts - 1:
                        break
                    sleep(acfg.retry_backoff_seconds * 2**i)
        except SendError as err:
            error, transient = str(err), err.transient
        if error is None:
            astore.mark(e.outbox_id, "sent", attempts=attempts, now=utcnow())
            sent.append(where)
        else:
            error = mask(error, built.get(e.channel))
            astore.mark(e.outbox_id, "pending", attempts=attempts, error=error, now=utcnow())
            failed.append(f"{where}: {error}")
            if transient:
                down[e.channel] = error
            log.warning("notification %s not sent (attempt %d): %s", where, attempts, error)
    return DeliveryReport(tuple(sent), tuple(failed), tuple(expired))


# -- thin task wrapper ------------------------------------------------------------------------


@task(name="alert", cache_policy=NO_CACHE)
def alert_task(
    cfg: Config, store: Store, window: Window, run_id: str, send: bool, only_metrics: frozenset[str] | None = None
) -> AlertReport:
    return alert_window(cfg, store, window, run_id, send=send, only_metrics=only_metrics)


def with_alerts(summary: RunSummary, report: AlertReport) -> RunSummary:
    """The run summary with what alerting did appended to its notes."""
    return replace(summary, notes=(*summary.notes, *report.lines()))


def alert_failed_run(cfg: Config, store: Store, run: RunHandle) -> None:
    """After a failed run: judge only the run-meta rules (monitoring_run_success == 0),
    so a run that dies can still page. Never raises: the run's own error is the one
    that must surface; an alerting failure here is logged."""
    try:
        alert_task.with_options(name="alert-failed-run")(
            cfg, store, run.window, run.run_id, run.notify, RUN_META_METRICS
        )
    except Exception as err:
        log.error("alerting on the failed run %s failed too: %s: %s", run.run_id, type(err).__name__, err)
