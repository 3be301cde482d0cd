"""The overview (index.html) and the window pages (windows/<granularity>-<date>.html)."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict

from aimon.records import ALL
from aimon.report.charts import Chart, Raw, csv_link, esc, fmt, render, slug, table
from aimon.report.data import ReportData
from aimon.report.figures import label_text, trace_of
from aimon.report.paths import CONCERNS, INDEX, window_page
from aimon.report.shell import filter_box, notice, page
from aimon.windows import Window

_EVERYTHING = {"model": ALL, "endpoint": ALL}
# The window at a glance: (what, metric, labels, format)
KEY_FIGURES: tuple[tuple[str, str, dict[str, str], str], ...] = (
    ("requests", "llm_requests", _EVERYTHING, ",.0f"),
    ("error rate", "llm_error_rate", _EVERYTHING, ".2%"),
    ("latency p50 (s)", "llm_latency_seconds", {**_EVERYTHING, "quantile": "0.5"}, ".3f"),
    ("latency p95 (s)", "llm_latency_seconds", {**_EVERYTHING, "quantile": "0.95"}, ".3f"),
    ("latency p99 (s)", "llm_latency_seconds", {**_EVERYTHING, "quantile": "0.99"}, ".3f"),
    ("cost (USD)", "llm_cost_usd", _EVERYTHING, ",.2f"),
    ("tokens in", "llm_tokens", {**_EVERYTHING, "type": "input"}, ",.0f"),
    ("tokens out", "llm_tokens", {**_EVERYTHING, "type": "output"}, ",.0f"),
    ("month budget used (total)", "llm_budget_used_ratio", {"period": "month", "scope": "total"}, ".1%"),
    ("month-end forecast (USD)", "llm_cost_forecast_usd", {"scope": "total"}, ",.2f"),
    ("F1 (weighted, all models)", "model_f1", {"average": "weighted", "model": ALL}, ".3f"),
    ("accuracy (all models)", "model_accuracy", {"model": ALL}, ".3f"),
    ("drifted features (share)", "data_drift_share", {}, ".0%"),
    ("embedding drift", "embedding_drift_detected", {}, ".0f"),
    ("mean rating", "feedback_rating_mean", {"model": ALL}, ".2f"),
)


def _status(s: str | None) -> Raw:
    return Raw(f'<span class="st-{esc(s or "none")}">{esc(s or "no run")}</span>')


def _link(w: Window, depth: int) -> Raw:
    return Raw(f'<a href="{"../" * depth}{window_page(w)}">{esc(w.label)}</a>')


def _alert_counts(data: ReportData) -> dict[dt.datetime, Counter[str]]:
    out: dict[dt.datetime, Counter[str]] = defaultdict(Counter)
    for e in data.events:
        out[e.window_start][e.status] += 1
        if e.silenced_by:
            out[e.window_start]["silenced"] += 1
    return out


def overview(data: ReportData) -> str:
    if data.problem:
        return page(data, "aimon report", notice(data.problem), here=INDEX, charts=False)
    if data.empty:
        msg = f"no {data.granularity} windows have been monitored in {data.range_text} ({data.where})"
        hint = " — run `aimon run`, `aimon backfill` or `aimon demo`, or widen --start/--end."
        return page(data, "aimon report", notice(msg + hint), here=INDEX, charts=False)
    alerts = _alert_counts(data)
    first, last = data.windows[0], data.windows[-1]
    latest = data.runs.get(last.start)
    statuses = Counter((data.runs[w.start].status if w.start in data.runs else "no run") for w in data.windows)
    intro = (
        f"<p>{len(data.windows)} {esc(data.granularity)} windows, {esc(first.label)} to {esc(last.label)}: "
        + ", ".join(f"{n} {esc(s)}" for s, n in statuses.most_common())
        + f". Latest: {_link(last, 0)} ({_status(latest.status if latest else None)}, "
        f"{alerts[last.start]['firing']} alerts firing).</p>"
        + "<p>Pages: "
        + " · ".join(f'<a href="{n}">{esc(t)}</a>' for n, t in CONCERNS.items())
        + "</p>"
    )
    rows = []
    rejected: dict[dt.datetime, float] = {}
    for w in reversed(data.windows):
        r = data.runs.get(w.start)
        c = alerts[w.start]
        if r and r.rows_rejected is not None:
            rejected[w.start] = float(r.rows_rejected)
        rows.append(
            [
                _link(w, 0),
                _status(r.status if r else None),
                r.runs if r else 0,
                r.rows_accepted if r else None,
                r.rows_rejected if r else None,
                c["firing"],
                c["pending"],
                c["resolved"],
                c["silenced"],
                None if r is None or r.duration_seconds is None else round(r.duration_seconds, 2),
                (r.error or "")[:200] if r else "",
            ]
        )
    cols = [
        "window",
        "status",
        "runs",
        "rows accepted",
        "rows rejected",
        "alerts firing",
        "pending",
        "resolved",
        "silenced",
        "seconds",
        "error",
    ]
    chart = Chart("chart-overview-rejected", "Rows rejected per window, by reason", "rows")
    chart.traces = [
        trace_of(data, labels.get("reason", "rejected"), points, "bar")
        for labels, points in data.series("monitoring_rows", status="rejected")
        if labels.get("reason") and any(points.values())  # a reason no row broke: not in the legend
    ] or [trace_of(data, "rejected", rejected, "bar")]
    chart.caption = "Rows that break the data contract, counted by reason (docs: the data contract)."
    chart.empty = "no run recorded rejected rows in these windows"
    csv_rows = [[_plain(v) for v in r] for r in rows]
    body = (
        intro
        + render(chart)
        + "<h2>Windows</h2>"
        + filter_box("windows-table", {1: "status"})
        + table(cols, rows, table_id="windows-table")
        + csv_link("windows", cols, csv_rows, "download CSV")
    )
    return page(data, "aimon report", body, here=INDEX, filters=True)


def _plain(v: object) -> object:
    if isinstance(v, Raw):  # a link or a status: its text
        return v.split(">", 1)[1].split("<", 1)[0] if ">" in v else str(v)
    return v


def window_body(data: ReportData, w: Window, prev: Window | None, nxt: Window | None) -> str:
    r = data.runs.get(w.start)
    nav = " · ".join(
        x
        for x in (
            f'<a href="../{window_page(prev)}">← {esc(prev.label)}</a>' if prev else "",
            f'<a href="../{INDEX}">all windows</a>',
            f'<a href="../{window_page(nxt)}">{esc(nxt.label)} →</a>' if nxt else "",
        )
        if x
    )
    out = [f"<p>{nav}</p>", f"<p><code>[{w.start:%Y-%m-%d %H:%M}, {w.end:%Y-%m-%d %H:%M})</code> UTC</p>"]
    if r is None:
        out.append(notice("this window has figures but no run recorded in the runs table"))
    else:
        out.append(
            table(
                ["status", "run", "runs of this window", "rows accepted", "rows rejected", "seconds", "started (UTC)"],
                [
                    [
                        _status(r.status),
                        r.run_id,
                        r.runs,
                        r.rows_accepted,
                        r.rows_rejected,
                        None if r.duration_seconds is None else round(r.duration_seconds, 2),
                        f"{r.started_at:%Y-%m-%d %H:%M:%S}",
                    ]
                ],
            )
        )
        if r.error:
            out.append(notice(f"error: {r.error}"))
        analyzers = [
            [k, "ok" if not v.get("error") else f"error: {v['error']}", v.get("seconds")]
            for k, v in sorted(r.details.items())
            if isinstance(v, dict)
        ]
        if analyzers:
            out += ["<h2>Analyzers</h2>", table(["analyzer", "status", "seconds"], analyzers)]
    figs = data.by_window.get(w.start, [])
    values = {(m, lj): v for m, lj, v in figs}
    key_rows = []
    for what, metric, labels, spec in KEY_FIGURES:
        v = values.get((metric, json.dumps(labels, sort_keys=True, separators=(",", ":"))))
        key_rows.append([what, "-" if v is None else format(v, spec)])
    out += ["<h2>Key figures</h2>", table(["figure", "value"], key_rows)]
    rejected = [
        [data.labels[lj].get("reason", ""), v]
        for m, lj, v in figs
        if m == "monitoring_rows" and data.labels[lj].get("status") == "rejected" and v
    ]
    if rejected:
        out += ["<h2>Rejected rows</h2>", table(["reason", "rows"], rejected)]
    events = [e for e in data.events if e.window_start == w.start]
    out.append("<h2>Alerts in this window</h2>")
    if events:
        rows = [
            [
                e.status,
                e.severity,
                e.rule,
                f"{e.metric}{{{label_text(json.loads(e.labels))}}}",
                e.value,
                e.bound,
                e.silenced_by or "",
            ]
            for e in events
        ]
        out.append(table(["status", "severity", "rule", "series", "value", "bound", "silenced by"], rows))
    else:
        out.append("<p>no alert pending, firing or resolved in this window</p>")
    sent = [o for o in data.outbox if o.window_start == w.start]
    if sent:
        out += [
            "<h2>Notifications</h2>",
            table(
                ["route -> channel", "status", "tries", "sent (UTC)", "alerts"],
                [
                    [
                        f"{o.route} -> {o.channel}",
                        o.status,
                        o.attempts,
                        "" if o.sent_at is None else f"{o.sent_at:%Y-%m-%d %H:%M}",
                        ", ".join(i.get("rule", "") for i in o.payload.get("items", [])),
                    ]
                    for o in sent
                ],
            ),
        ]
    out.append(f"<h2>Every figure ({len(figs)})</h2>")
    if figs:
        # The table is drawn from the CSV link's data when opened (shell.CSV_TABLE_JS):
        # hundreds of rows per window, on hundreds of pages, are not written out twice.
        out.append(
            csv_link(
                "figures-" + slug(w.label),
                ["metric", "labels", "value"],
                [[m, label_text(data.labels[lj]), fmt(v)] for m, lj, v in figs],
                "download CSV",
                link_id="figures-csv",
            )
        )
        out.append('<details data-csv-table="figures-csv"><summary>show the table</summary></details>')
    else:
        out.append("<p>no figures stored for this window (the run may have failed before publishing)</p>")
    return "".join(out)


def window_page_html(data: ReportData, i: int) -> str:
    w = data.windows[i]
    prev = data.windows[i - 1] if i > 0 else None
    nxt = data.windows[i + 1] if i + 1 < len(data.windows) else None
    title = f"{w.granularity} window {w.label}"
    return page(data, title, window_body(data, w, prev, nxt), here="", depth=1, charts=False, filters=True)
