"""The alerts page: what `aimon alerts history` prints — every window's alert events
(pending, firing, recovering, folded, resolved, silenced) and the notifications sent —
as tables with filters, the silences, and a chart per series that fired with its rule
drawn."""

from __future__ import annotations

import json

from aimon.report.bands import rules_for
from aimon.report.charts import Raw, csv_link, esc, render, slug, table
from aimon.report.concerns import empty_page
from aimon.report.data import ReportData
from aimon.report.figures import label_text, series_chart
from aimon.report.paths import window_page
from aimon.report.shell import filter_box, page

MAX_CHARTS = 24  # series charts on the page: the most recently firing ones


def _events(data: ReportData) -> str:
    if not data.events:
        return "<p>no alert events recorded in these windows: no rule was breached (or no rules are configured)</p>"
    windows = {w.start: w for w in data.windows}
    cols = [
        "window",
        "status",
        "severity",
        "rule",
        "series",
        "value",
        "bound",
        "active since (UTC)",
        "folded into",
        "silenced by",
        "note",
    ]
    rows, csv_rows = [], []
    links: dict[object, tuple[str, str]] = {}  # window start -> (label, link): ~3 events a window
    named: dict[tuple[str, str], str] = {}
    for e in reversed(data.events):
        if e.window_start not in links:
            w = windows.get(e.window_start)
            label = data.x(e.window_start)
            links[e.window_start] = (label, Raw(f'<a href="{window_page(w)}">{esc(label)}</a>') if w else label)
        label, link = links[e.window_start]
        key = (e.metric, e.labels)
        if key not in named:
            named[key] = f"{e.metric}{{{label_text(json.loads(e.labels))}}}"
        series = named[key]
        since = "" if e.active_since is None else f"{e.active_since:%Y-%m-%d %H:%M}"
        status = e.status + (" (silenced)" if e.silenced_by else "")
        into = _into(data, e.folded_into) if e.folded_into else ""
        rest = [e.severity, e.rule, series, e.value, e.bound, since, into, e.silenced_by or "", e.note or ""]
        rows.append([link, status, *rest])
        csv_rows.append([label, status, *rest])
    return (
        '<p class="aimon-caption">Statuses: pending (breaching, not for long enough yet), firing, recovering '
        "(firing, back within bounds for fewer windows than the rule's resolve_after), folded (firing, but "
        "folded into the alert named, which is sent for both), resolved.</p>"
        + filter_box("alert-events", {1: "status", 2: "severity", 3: "rule", 8: "folded into"})
        + table(cols, rows, table_id="alert-events")
        + csv_link("alert-events", cols, csv_rows, "download CSV")
    )


def _into(data: ReportData, alert_id: str) -> str:
    """The alert a folded one went into, as rule{labels} (its id when its state is gone)."""
    parent = data.folded_into.get(alert_id)
    if parent is None:
        return f"alert {alert_id[:12]}"
    return f"{parent.rule}{{{label_text(parent.labels_dict)}}}"


def _notifications(data: ReportData) -> str:
    if not data.outbox:
        return (
            "<p>no notifications queued for these windows "
            "(no channel configured, or nothing fired on a live window)</p>"
        )
    cols = ["queued (UTC)", "window", "route -> channel", "status", "tries", "sent (UTC)", "alerts", "last error"]
    rows = []
    for o in data.outbox:
        items = o.payload.get("items", [])
        what = ", ".join(f"{'RESOLVED ' if i.get('status') == 'resolved' else ''}{i.get('rule', '')}" for i in items)
        rows.append(
            [
                f"{o.created_at:%Y-%m-%d %H:%M}",
                data.x(o.window_start),
                f"{o.route} -> {o.channel}",
                o.status,
                o.attempts,
                "" if o.sent_at is None else f"{o.sent_at:%Y-%m-%d %H:%M}",
                what,
                (o.last_error or "")[:200],
            ]
        )
    return (
        filter_box("alert-notifications", {3: "status", 2: "route -> channel"})
        + table(cols, rows, table_id="alert-notifications")
        + csv_link("alert-notifications", cols, rows, "download CSV")
    )


def _silences(data: ReportData) -> str:
    if not data.silences:
        return "<p>no silences</p>"
    rows = [
        [
            s.silence_id,
            " ".join(s.matchers),
            f"{s.starts_at:%Y-%m-%d %H:%M}",
            f"{s.ends_at:%Y-%m-%d %H:%M}",
            "removed" if s.removed_at else "",
            s.comment,
            s.created_by,
        ]
        for s in data.silences
    ]
    return table(["id", "matchers", "from (UTC)", "until (UTC)", "removed", "comment", "by"], rows)


def _charts(data: ReportData) -> list[str]:
    last_fired: dict[tuple[str, str, str], object] = {}
    for e in data.events:
        if e.status == "firing":
            last_fired[(e.rule, e.metric, e.labels)] = e.window_start
    out = []
    for rule_name, metric, lj in sorted(last_fired, key=lambda k: last_fired[k], reverse=True)[:MAX_CHARTS]:  # type: ignore[arg-type, return-value]
        labels = json.loads(lj)
        points = data.figures.get(metric, {}).get(lj, {})
        rules = [r for r in rules_for(data, metric, labels) if r.name == rule_name]
        chart = series_chart(
            data,
            f"chart-alert-{slug(rule_name)}-{slug(label_text(labels))}",
            f"{rule_name}: {metric}{{{label_text(labels)}}}",
            metric,
            [("value", labels, points)],
            caption="" if rules else f"(rule {rule_name} is no longer in the config: its line is not drawn)",
        )
        out.append(render(chart))
    return out


def alerts(data: ReportData) -> str:
    here, title = "alerts.html", "Alerts"
    if (p := empty_page(data, title, here)) is not None:
        return p
    charts = _charts(data)
    body = (
        "<h2>Alerts per window</h2>"
        '<p class="aimon-caption">What each evaluated window found (aimon alerts history --windows), newest first.</p>'
        + _events(data)
        + "<h2>Notifications</h2>"
        '<p class="aimon-caption">The outbox (aimon alerts history): every notification queued, sent or expired.</p>'
        + _notifications(data)
        + "<h2>Silences</h2>"
        + _silences(data)
        + "<h2>Series that fired</h2>"
        + ("".join(charts) or "<p>no alert fired in these windows</p>")
    )
    return page(data, title, body, here=here, charts=bool(charts), filters=True)
