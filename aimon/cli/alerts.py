"""`aimon alerts list | history | silence | unsilence`: alert state, the notification
history and silences, read from the store."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from aimon.cli.common import ConfigOpt, Format, FormatOpt, Output, console, fail, load, login, output, to_utc
from aimon.cli.summary_json import event_doc, outbox_doc, silence_doc, state_doc
from aimon.config.alerts import parse_duration
from aimon.config.channels import SEVERITIES
from aimon.matchers import Matcher
from aimon.store.alerts import OUTBOX_STATUSES, AlertState, AlertStore, Silence
from aimon.store.schema import require_store, utcnow
from aimon.tasks.alerts.render import fmt_value
from aimon.tasks.alerts.state import silenced_by


def _print(*args: Any) -> None:
    console.print(*args)


alerts_app = typer.Typer(no_args_is_help=True, help="Alert state, notification history and silences.")

_SEVERITY_STYLE = {"critical": "red", "warning": "yellow", "info": "blue"}


def _series(metric: str, labels: str) -> str:
    d = json.loads(labels)
    return f"{metric}{{{', '.join(f'{k}={v}' for k, v in sorted(d.items()))}}}"


def _into(states: dict[str, AlertState], alert_id: str | None) -> str:
    """The alert a folded one is folded into, as rule{labels}."""
    p = states.get(alert_id or "")
    return "?" if p is None else f"{p.rule}{{{', '.join(f'{k}={v}' for k, v in sorted(p.labels_dict.items()))}}}"


def _ts(v: dt.datetime | None) -> str:
    return "-" if v is None else f"{v:%Y-%m-%d %H:%M}"


def parse_until(text: str, timezone: str, now: dt.datetime) -> dt.datetime:
    """`--until`: an ISO timestamp (local time in windows.timezone unless it has an
    offset) or a duration from now (`2h`, `3d`). Returns naive UTC."""
    try:
        return now + parse_duration(text)
    except ValueError:
        pass
    try:
        ts = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a timestamp (2026-12-01T09:00) nor a duration (2h, 3d)") from None
    return to_utc(ts, timezone)


@alerts_app.command("list")
def list_alerts(
    config: ConfigOpt = None,
    all_: Annotated[bool, typer.Option("--all", help="also resolved alerts and ended silences")] = False,
    fmt: FormatOpt = Format.text,
) -> None:
    """Alerts firing and pending now (per series), and the silences in force."""
    with output(fmt) as out:
        _list(out, config, all_)


def _list(out: Output, config: Path | None, all_: bool) -> None:
    cfg = load(config)
    require_store(cfg)
    astore = AlertStore(cfg)
    now = utcnow()
    states = sorted(
        astore.states().values(),
        key=lambda s: (
            s.status != "firing",
            s.status != "folded",
            s.status != "pending",
            SEVERITIES.index(s.severity),
            s.rule,
            s.labels,
        ),
    )
    by_id = {s.alert_id: s for s in states}
    active = astore.active_silences(now)
    # An alert of a rule since removed from the config is history, not a live alert.
    rules = {r.name for r in cfg.alerts.rules}
    shown = [s for s in states if all_ or (s.status in ("firing", "folded", "pending") and s.rule in rules)]
    silences = [si for si in astore.silences_all() if all_ or si.active(now) or si.starts_at > now]
    if out.json:
        out.emit(
            {
                "alerts": [state_doc(s, silenced_by(active, _alert_labels(s))) for s in shown],
                "silences": [silence_doc(si, _state(si, now)) for si in silences],
            }
        )
        return
    t = Table(title=f"alerts ({'all' if all_ else 'firing, folded and pending'})", title_justify="left")
    for col in ("status", "severity", "rule", "series", "value", "since (UTC)", "told"):
        t.add_column(col, overflow="fold", no_wrap=col != "series", min_width=40 if col == "series" else None)
    for s in shown:
        style = _SEVERITY_STYLE.get(s.severity, "") if s.status == "firing" else ""
        muted = silenced_by(active, _alert_labels(s))
        status = f"[{style}]{s.status}[/{style}]" if style else s.status
        if s.status == "folded":
            status += f" into {_into(by_id, s.folded_into)}"
        elif s.status == "firing" and s.ok_windows:
            status += f" (recovering, {s.ok_windows} ok)"
        t.add_row(
            status + (f" (silenced {muted})" if muted else ""),
            s.severity,
            s.rule,
            _series(s.metric, s.labels),
            fmt_value(s.metric, s.value),
            f"{_ts(s.active_since)} {s.granularity}",
            s.notified_status or "-",
        )
    if shown:
        _print(t)
    else:
        _print("no alerts firing or pending" if not all_ else "no alerts recorded")
    if silences:
        st = Table(title="silences", title_justify="left")
        for col in ("id", "matchers", "until (UTC)", "state", "comment", "by"):
            st.add_column(col)
        for si in silences:
            when = _ts(si.ends_at)
            st.add_row(si.silence_id, " ".join(si.matchers), when, _state(si, now), si.comment, si.created_by)
        _print(st)
    else:
        _print("no silences in force")


@alerts_app.command("history")
def history(
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="most recent notifications to show")] = 20,
    status: Annotated[str | None, typer.Option(help="only sent, pending or expired")] = None,
    windows: Annotated[
        bool, typer.Option("--windows", help="show what each window's alert evaluation found instead")
    ] = False,
    since: Annotated[str | None, typer.Option(help="with --windows: from this date (YYYY-MM-DD)")] = None,
    fmt: FormatOpt = Format.text,
) -> None:
    """What was sent, when, where, and what failed (the outbox); or with --windows,
    the alerts each evaluated window found, sent or not (backfills included)."""
    with output(fmt) as out:
        _history(out, config, limit, status, windows, since)


def _history(
    out: Output, config: Path | None, limit: int, status: str | None, windows: bool, since: str | None
) -> None:
    cfg = load(config)
    require_store(cfg)
    astore = AlertStore(cfg)
    if windows:
        start = None
        if since:
            try:
                start = dt.datetime.combine(dt.date.fromisoformat(since), dt.time())
            except ValueError:
                fail("bad --since", f"{since!r} is not YYYY-MM-DD", 2)
        events = astore.events_between(start)[-limit * 10 :]
        if out.json:
            out.emit({"events": [event_doc(ev, window=True) for ev in events]})
            return
        if not events:
            _print("no alert events recorded")
            return
        t = Table(title="alerts per window", title_justify="left")
        for col in ("window (UTC)", "status", "severity", "rule", "series", "value", "bound", "silenced by", "note"):
            t.add_column(col, overflow="fold")
        for ev in events:
            t.add_row(
                f"{_ts(ev.window_start)} {ev.granularity}",
                ev.status,
                ev.severity,
                ev.rule,
                _series(ev.metric, ev.labels),
                fmt_value(ev.metric, ev.value),
                fmt_value(ev.metric, ev.bound),
                ev.silenced_by or "",
                ev.note or "",
            )
        _print(t)
        return
    if status is not None and status not in OUTBOX_STATUSES:
        fail("bad --status", f"use one of {', '.join(OUTBOX_STATUSES)}", 2)
    entries = astore.outbox_entries(status, limit)
    if out.json:
        out.emit({"notifications": [outbox_doc(e) for e in entries]})
        return
    if not entries:
        _print("no notifications recorded" + (f" with status {status}" if status else ""))
        return
    t = Table(title="notifications (newest first; times UTC)", title_justify="left")
    for col in ("queued", "window", "route -> channel", "status", "tries", "sent", "alerts", "last error"):
        t.add_column(col, no_wrap=col in ("route -> channel", "status"), overflow="fold")
    for e in entries:
        items = e.payload.get("items", [])
        what = ", ".join(f"{'RESOLVED ' if i['status'] == 'resolved' else ''}{i['rule']}" for i in items[:4])
        if len(items) > 4:
            what += f" +{len(items) - 4}"
        color = {"sent": "green", "pending": "yellow", "expired": "red"}[e.status]
        t.add_row(
            _ts(e.created_at),
            f"{_ts(e.window_start)} {e.granularity}",
            f"{e.route} -> {e.channel}",
            f"[{color}]{e.status}[/{color}]",
            str(e.attempts),
            _ts(e.sent_at),
            what,
            (e.last_error or "")[:80],
        )
    _print(t)


@alerts_app.command("silence")
def silence(
    matcher: Annotated[
        list[str],
        typer.Option("--matcher", "-m", help="k=v, k!=v, k=~regex or k!~regex; repeat to AND them"),
    ],
    until: Annotated[str, typer.Option(help="a timestamp (windows.timezone unless offset given) or a duration: 2h")],
    comment: Annotated[str, typer.Option(help="why: shown by `aimon alerts list`")],
    config: ConfigOpt = None,
    author: Annotated[str | None, typer.Option(help="who (default: the login name)")] = None,
) -> None:
    """Mute alerts whose labels match every matcher until a time. Keys: the figure's
    labels plus alertname, severity, metric, route, granularity."""
    cfg = load(config)
    if not matcher:
        fail("bad usage", "give at least one --matcher, e.g. --matcher alertname=LatencyP95High", 2)
    try:
        parsed = [Matcher.parse(m) for m in matcher]
    except ValueError as err:
        fail("bad --matcher", str(err), 2)
    now = utcnow()
    try:
        ends = parse_until(until, cfg.windows.timezone, now)
    except ValueError as err:
        fail("bad --until", str(err), 2)
    if ends <= now:
        fail("bad --until", f"{ends:%Y-%m-%d %H:%M} UTC is in the past", 2)
    s = Silence(
        uuid.uuid4().hex[:8],
        tuple(str(m) for m in parsed),
        now,
        ends,
        comment,
        author or login(),
        now,
    )
    AlertStore(cfg).add_silence(s)
    _print(f"silence {s.silence_id}: {' '.join(s.matchers)} until {ends:%Y-%m-%d %H:%M} UTC")


@alerts_app.command("unsilence")
def unsilence(
    silence_id: Annotated[str, typer.Argument(help="the id `aimon alerts list` shows")], config: ConfigOpt = None
) -> None:
    """End a silence now."""
    cfg = load(config)
    if not AlertStore(cfg).remove_silence(silence_id):
        fail(f"no active silence {silence_id!r}", "see the ids with `aimon alerts list --all`", 1)
    _print(f"silence {silence_id} ended")


def _alert_labels(s: AlertState) -> dict[str, str]:
    """What a silence matches an alert on: its labels and the alert's own keys."""
    return {
        **s.labels_dict,
        "alertname": s.rule,
        "severity": s.severity,
        "metric": s.metric,
        "route": s.route,
        "granularity": s.granularity,
    }


def _state(si: Silence, now: dt.datetime) -> str:
    if si.removed_at:
        return "removed"
    return "active" if si.active(now) else ("scheduled" if si.starts_at > now else "ended")
