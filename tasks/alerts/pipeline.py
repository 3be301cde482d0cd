"""Alerting on one window, end to end: rules -> state -> outbox -> delivery.

`alert_window` judges the rules on the window's stored figures (rules.py), derives
the new alert states (state.py), commits states, the window's alert events and the
grouped outbox entries (outbox.py) in one transaction, then, when sending, calls
`deliver` (delivery.py). A rerun of a window finds its notifications already told
and sends nothing. `AlertReport` is what the run summary shows of it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aimon.config import Config
from aimon.store.alerts import AlertState, AlertStore, utcnow
from aimon.store.metrics import Store
from aimon.tasks.alerts.causes import FigureCache, cause_lines
from aimon.tasks.alerts.channel_base import Channel
from aimon.tasks.alerts.delivery import DeliveryReport, deliver
from aimon.tasks.alerts.folding import apply_folds, brief, folded_items, folds, hand_over
from aimon.tasks.alerts.inputs import max_span, not_judged_notes, rule_inputs
from aimon.tasks.alerts.outbox import notification_item, outbox_entries
from aimon.tasks.alerts.render import fmt_value
from aimon.tasks.alerts.rules import Judgement, evaluate_rule, previous_windows
from aimon.tasks.alerts.state import Transition, alert_id, alert_labels, silenced_by, transition
from aimon.windows import Window


@dataclass(frozen=True)
class AlertReport:
    """What alerting did in one run, for the run summary."""

    firing: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    silenced: tuple[str, ...] = ()
    recovering: tuple[str, ...] = ()  # firing, back within bounds, not yet for resolve_after windows
    folded: tuple[str, ...] = ()  # "X into Y (why)": firing, but part of Y's incident
    queued: int = 0
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    notes: tuple[str, ...] = ()
    sending: bool = True

    def lines(self) -> list[str]:
        out = [f"alert firing: {a}" for a in self.firing]
        out += [f"alert pending: {a}" for a in self.pending]
        out += [f"alert resolved: {a}" for a in self.resolved]
        out += [f"alert silenced: {a}" for a in self.silenced]
        out += [f"alert recovering: {a}" for a in self.recovering]
        out += [f"alert folded: {a}" for a in self.folded]
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
    provisional: bool = False,
) -> AlertReport:
    """Evaluate the rules on the window's stored figures, commit the new alert state
    with its notifications, and (when `send`) deliver what the outbox holds.

    `only_metrics`: judge just the rules on these metrics (a failed run has only its
    run-meta figures; the others are the previous run's and were judged then).
    `provisional`: the window has not ended (a run with allow_partial): its events are
    recorded, but it changes no alert state and sends nothing.

    Only a series present in the window is judged: one that was pending or firing and
    has no figure here (no rows for that model, an analyzer off or failed) keeps its
    state. Absence is "not judged", never "back to normal"."""
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
    # Earlier windows' events say where a series' alert was on: left out of its baseline.
    reach = max_span(rules)
    events = (
        astore.events_between(previous_windows(window, reach)[-1].start, window.start, window.granularity)
        if reach
        else []
    )
    for rule in rules:
        current = by_metric.get(rule.metric)
        if not current:
            continue  # the figure is absent in this window (analyzer off or failed): not judged
        judged_rules.append(rule.name)
        got = rule_inputs(store, events, rule, window)
        judgements = evaluate_rule(
            rule, window, current, got.history, got.prev, context=got.context, alerting=got.alerting
        )
        notes.extend(not_judged_notes(rule, judgements))
        for j in judgements:
            prev_state = states.get(alert_id(rule.name, window.granularity, j.labels_json))
            silence = silenced_by(silences, alert_labels(rule, dict(j.labels), window.granularity))
            t = transition(
                j,
                prev_state,
                window,
                run_id,
                repeat_interval=acfg.repeat_interval if rule.repeat_windows is None else None,
                repeat_windows=rule.repeat_windows or acfg.repeat_windows,
                resolve_after=rule.resolve_after or acfg.resolve_after,
                silence=silence,
                provisional=provisional,
            )
            if t is not None:
                transitions.append((j, t))

    # One incident, one page: an alert firing under another one of this window (a
    # roll-up of its own rule, or an inhibit rule's source) is folded into it.
    fold_map = folds(transitions, acfg.inhibit_rules, window.granularity)
    transitions = hand_over(apply_folds(transitions, fold_map))
    items: dict[str, list[dict[str, Any]]] = {}
    cause_cache = FigureCache(store, window)  # likely causes: one read per metric for the window's alerts
    for n, (j, t) in enumerate(transitions):
        if t.notify is not None and send:
            why = cause_lines(cause_cache, j.rule, dict(j.labels), t.state.active_since) if t.notify == "firing" else []
            item = notification_item(j, t, window, causes=why)
            if t.notify == "firing":
                item["folded"] = folded_items(transitions, fold_map, n)
            items.setdefault(j.rule.route, []).append(item)
    entries = outbox_entries(acfg, window, run_id, items, store_where=store.where, now=now)
    # Not sending (a historical window): the route was not told, so the state must
    # not say it was; the first live run that still sees the alert firing tells it.
    new_states = [
        t.state if send or t.notify is None else _untold(t.state, states.get(t.state.alert_id)) for _, t in transitions
    ]
    if provisional:
        # A window that has not ended is a preview: what it finds is recorded as events,
        # but the alert state is left as it was and nothing is queued, so the window's
        # real run (and the one before it, if it runs later) judges and tells as usual.
        new_states, entries = [], []
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
        recovering=tuple(
            f"{_brief(j)}: {t.event.note}"
            for j, t in transitions
            if t.event is not None and status_of(t) == "recovering"
        ),
        folded=tuple(
            f"{_brief(transitions[f.child][0])} into {brief(transitions[f.root][0])} ({f.via})"
            for f in sorted(fold_map.values(), key=lambda f: (f.root, f.child))
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
