"""Notification payloads and the outbox entries that carry them.

The items of one window are grouped per route (firing first, most severe first),
and each route gets one entry per channel, keyed by route, channel, window and a
digest of its items, so a rerun of the window queues nothing twice. Entries are
committed with the alert state (pipeline.py) and sent later (delivery.py): writing
the outbox never talks to a channel.

Notifications carry figure names, label values, numbers and windows only: never
prompts, responses, references or user ids (none of them is ever a metric label).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import string
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from aimon.config.alerts import AlertsConfig
from aimon.config.channels import SEVERITIES
from aimon.records import ALL, labels_json
from aimon.store.alerts import OutboxEntry
from aimon.tasks.alerts.render import describe_condition, fmt_value
from aimon.tasks.alerts.rules import Judgement
from aimon.tasks.alerts.state import Transition
from aimon.windows import Window

log = logging.getLogger("aimon.alerts")


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


class _Absent:
    """A number the judgement does not have (no threshold, no baseline yet): reads
    "absent" whatever the template's format spec, never "$nan"."""

    def __format__(self, spec: str) -> str:
        return "absent"

    def __str__(self) -> str:
        return "absent"

    __repr__ = __str__


def _num(v: float | None) -> float | _Absent:
    return _Absent() if v is None or v != v else v


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
            "value": _num(j.value),
            "threshold": _num(c.threshold),
            "bound": _num(c.bound),
            "baseline": _num(c.baseline),
            "labels": ", ".join(f"{k}={v}" for k, v in j.labels),
            "window": window.label,
        }
    )
    try:
        return string.Formatter().vformat(rule.summary, (), fields)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
        log.warning("rule %s: summary template failed (%s); using the default summary", rule.name, err)
        return default


def notification_item(j: Judgement, t: Transition, window: Window, *, causes: Sequence[str] = ()) -> dict[str, Any]:
    """`causes`: the likely-causes lines of the alert (causes.likely_causes), firing only."""
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
        "causes": list(causes),  # likely causes: which model/endpoint/error type/hours carry the change
        "hints": list(rule.hints),  # next steps for this kind of alert (the rule's hints: in the config)
        # A repeat says how long it has been firing: "day 4" (daily), "hour 5" (hourly).
        "firing_for": f"{'day' if window.granularity == 'daily' else 'hour'} {t.firing_windows}"
        if t.firing_windows
        else None,
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
