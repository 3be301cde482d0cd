"""The JSON documents of `--format json`: a run, windows, alert states, events, silences
and notifications. Keys are a contract for scripts: docs/reference/json.md lists them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aimon.tasks.alerts.state import alert_id
from aimon.windows import Window

if TYPE_CHECKING:
    from aimon.store.alerts import AlertEvent, AlertState, OutboxEntry, Silence
    from aimon.tasks.orchestration.run import RunSummary


def window_doc(w: Window) -> dict[str, Any]:
    return {"start": w.start, "end": w.end, "granularity": w.granularity, "label": w.label, "timezone": w.timezone}


def labels_of(labels: str | tuple[tuple[str, str], ...]) -> dict[str, str]:
    return dict(json.loads(labels)) if isinstance(labels, str) else dict(labels)


def event_doc(ev: AlertEvent, *, window: bool = False) -> dict[str, Any]:
    """One alert of one window, as `alerts history --windows` and `run` show it."""
    doc: dict[str, Any] = {}
    if window:
        doc["window"] = {"start": ev.window_start, "end": ev.window_end, "granularity": ev.granularity}
    return {
        **doc,
        "status": ev.status,
        "rule": ev.rule,
        "severity": ev.severity,
        "metric": ev.metric,
        "labels": labels_of(ev.labels),
        "value": ev.value,
        "bound": ev.bound,
        "active_since": ev.active_since,
        "route": ev.route,
        "silenced_by": ev.silenced_by,
        "folded_into": ev.folded_into,
        "note": ev.note,
        "run_id": ev.run_id,
    }


def run_doc(summary: RunSummary, events: list[AlertEvent], states: Mapping[str, AlertState]) -> dict[str, Any]:
    """What one run found. `events`: the alert events recorded for its window (this run's
    are kept); `states`: the alert states, by id. As in the text summary, an alert counts
    as resolved here only if its state resolved in this window: a rerun of an older window
    records "resolved" for an alert that fired later, and that is not news of this run."""
    c = summary.contract
    w = summary.window

    def resolved_here(e: AlertEvent) -> bool:
        st = states.get(alert_id(e.rule, e.granularity, e.labels))
        return st is not None and st.resolved_window_start == w.start

    mine = [event_doc(e) for e in events if e.run_id == summary.run_id and (e.status != "resolved" or resolved_here(e))]
    return {
        "window": window_doc(w),
        "status": summary.status,
        "provisional": summary.provisional,
        "live": summary.live,
        "run_id": summary.run_id or None,
        "duration_seconds": summary.duration_seconds,
        "error": summary.error,
        "rows": None
        if c is None
        else {"accepted": c.accepted, "rejected_total": c.rejected_total, "rejected": dict(c.rejected)},
        "figures": [{"metric": r.metric, "labels": dict(r.labels), "value": r.value} for r in summary.records],
        "analyzers": [
            {
                "name": o.name,
                "status": "failed" if o.error else "ok",
                "seconds": o.seconds,
                "error": o.error,
                "notes": list(o.result.notes) if o.result is not None else [],
            }
            for o in summary.outcomes
        ],
        "alerts": {
            "firing": [e for e in mine if e["status"] == "firing" and not e["silenced_by"]],
            "pending": [e for e in mine if e["status"] == "pending"],
            "resolved": [e for e in mine if e["status"] == "resolved"],
            "silenced": [e for e in mine if e["status"] == "firing" and e["silenced_by"]],
        },
        "recommendations": next(
            (
                list(o.result.details.get("recommendations", []))
                for o in summary.outcomes
                if o.name == "costopt" and o.result
            ),
            [],
        ),
        "notes": list(summary.notes),
        "stored_in": summary.stored_in or None,
    }


def state_doc(s: AlertState, muted: str | None) -> dict[str, Any]:
    return {
        "status": s.status,
        "severity": s.severity,
        "rule": s.rule,
        "metric": s.metric,
        "labels": s.labels_dict,
        "granularity": s.granularity,
        "route": s.route,
        "value": s.value,
        "bound": s.bound,
        "active_since": s.active_since,
        "last_window_start": s.last_window_start,
        "fired_window_start": s.fired_window_start,
        "resolved_window_start": s.resolved_window_start,
        "notified_status": s.notified_status,
        "silenced_by": muted,
        "folded_into": s.folded_into,
        "ok_windows": s.ok_windows,
        "alert_id": s.alert_id,
        "run_id": s.run_id,
    }


def silence_doc(si: Silence, state: str) -> dict[str, Any]:
    return {
        "id": si.silence_id,
        "matchers": list(si.matchers),
        "state": state,
        "starts_at": si.starts_at,
        "ends_at": si.ends_at,
        "comment": si.comment,
        "created_by": si.created_by,
        "created_at": si.created_at,
        "removed_at": si.removed_at,
    }


def outbox_doc(e: OutboxEntry) -> dict[str, Any]:
    keys = ("alert_id", "rule", "status", "severity", "metric", "labels", "value", "summary")
    return {
        "id": e.outbox_id,
        "created_at": e.created_at,
        "window": {"start": e.window_start, "end": e.window_end, "granularity": e.granularity},
        "route": e.route,
        "channel": e.channel,
        "status": e.status,
        "attempts": e.attempts,
        "last_attempt_at": e.last_attempt_at,
        "sent_at": e.sent_at,
        "expires_at": e.expires_at,
        "last_error": e.last_error,
        "alerts": [{k: i.get(k) for k in keys} for i in e.payload.get("items", [])],
        "run_id": e.run_id,
    }
