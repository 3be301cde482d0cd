"""How a grouped notification reads: the same content as plain text, HTML and Slack
Block Kit. Input is the outbox payload (JSON-safe), so a notification retried on a
later run renders exactly as it would have the first time."""

from __future__ import annotations

import datetime as dt
import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aimon.config.alerts import AlertRule

_ICON = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}
_RESOLVED_ICON = ":white_check_mark:"


def fmt_value(metric: str, v: float | None) -> str:
    if v is None:
        return "absent"
    if v != v:
        return "NaN"
    if metric.endswith(("_rate", "_ratio", "_share")):
        return f"{v:.2%}"
    if metric.endswith("_usd"):
        return f"${v:,.2f}"
    if metric.endswith("_seconds") and "timestamp" not in metric:
        return f"{v:.3g} s" if abs(v) < 1000 else f"{v:,.0f} s"
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def describe_condition(rule: AlertRule, bound: float | None, baseline: float | None, windows: int) -> str:
    """'> 5.00%', or '> 1.5x the median 3.5 s of the previous 7 windows (4/7 stored) = 5.25 s'."""
    parts = []
    if rule.threshold is not None:
        parts.append(f"{rule.op} {fmt_value(rule.metric, rule.threshold)}")
    b = rule.baseline
    if b is not None:
        how = rule.baseline_how()  # '1.5x', '10% below', 'learned (median + 4.5 sigma, ...)'
        if baseline is None:
            parts.append(f"{rule.op} {how} the median of the previous {b.windows} windows (too little history)")
        else:
            stored = "" if windows == b.windows else f", {windows} stored"
            parts.append(
                f"{rule.op} {how} the median {fmt_value(rule.metric, baseline)} of the previous "
                f"{b.windows} windows{stored} = {fmt_value(rule.metric, bound)}"
            )
    text = " and ".join(parts)
    return text + (f", for {rule.for_windows} consecutive windows" if rule.for_windows > 1 else "")


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _since(item: dict[str, Any]) -> str:
    s = item.get("since")
    return f"{dt.datetime.fromisoformat(s):%Y-%m-%d %H:%M} UTC" if s else "-"


def subject(p: dict[str, Any]) -> str:
    counts = []
    if p["firing"]:
        counts.append(f"FIRING {p['firing']}")
    if p["resolved"]:
        counts.append(f"RESOLVED {p['resolved']}")
    first = p["items"][0]
    head = f"{first['rule']}" + (f" and {len(p['items']) - 1} more" if len(p["items"]) > 1 else "")
    return f"[aimon] {', '.join(counts)}: {head} ({p['granularity']} {p['window_label']})"


def _repeat(item: dict[str, Any]) -> str:
    """' (still firing, day 4)' on a repeat; payloads queued before firing_for: ' (still firing)'."""
    if not item.get("repeat"):
        return ""
    return f" (still firing, {item['firing_for']})" if item.get("firing_for") else " (still firing)"


def folded_text(item: dict[str, Any], limit: int = 10) -> str | None:
    """The series folded into this alert, compactly: 'folded (3): {model=a} = 0.61; Other{...} = 1'."""
    folded = item.get("folded") or []
    if not folded:
        return None
    parts = [
        f"{'' if f['rule'] == item['rule'] else f['rule']}{{{_labels(f['labels'])}}} = {f['value_text']}"
        for f in folded[:limit]
    ]
    more = f"; and {len(folded) - limit} more" if len(folded) > limit else ""
    return f"folded ({len(folded)}): {'; '.join(parts)}{more}"


def causes_and_steps(item: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The item's likely causes (causes.likely_causes) and its next steps: the rule's
    hints, then its runbook. Payloads queued before causes/hints render without them."""
    steps = [str(h) for h in item.get("hints") or []]
    if item.get("runbook"):
        steps.append(f"runbook: {item['runbook']}")
    return [str(c) for c in item.get("causes") or []], steps


def item_lines(item: dict[str, Any]) -> list[str]:
    state = "RESOLVED" if item["status"] == "resolved" else item["severity"].upper()
    repeat = _repeat(item)
    lines = [
        f"[{state}] {item['rule']}{repeat}: {item['summary']}",
        f"    {item['metric']}{{{_labels(item['labels'])}}} = {item['value_text']}",
        f"    condition: {item['condition']}",
        f"    since: {_since(item)}",
    ]
    if folded_text(item):
        lines.append(f"    {folded_text(item)}")
    causes, steps = causes_and_steps(item)
    if causes:
        lines += ["    likely causes:", *(f"      - {c}" for c in causes)]
    if steps:
        lines += ["    next steps:", *(f"      - {h}" for h in steps)]
    return lines


def footer_lines(p: dict[str, Any]) -> list[str]:
    lines = [f"window: {p['window']}", f"run: {p['run_id']}  route: {p['route']}"]
    if p.get("link"):
        lines.append(f"where to look next: {p['link']}")
    lines.append(f"figures: {p['store']}, window_start = '{p['window_start'].replace('T', ' ')}'")
    lines.append("history: aimon alerts history; silence: aimon alerts silence --matcher alertname=RULE --until TS")
    return lines


def text(p: dict[str, Any]) -> str:
    out = [subject(p), ""]
    for item in p["items"]:
        out += [*item_lines(item), ""]
    out += footer_lines(p)
    return "\n".join(out) + "\n"


def html_body(p: dict[str, Any]) -> str:
    e = html.escape
    rows = []
    for item in p["items"]:
        state = "RESOLVED" if item["status"] == "resolved" else item["severity"].upper()
        color = {"CRITICAL": "#b00020", "WARNING": "#b26a00", "INFO": "#1f5fa8"}.get(state, "#2e7d32")
        causes, steps = causes_and_steps(item)
        runbook = "".join(
            f'<br><b>{head}</b><ul style="margin:2px 0">{"".join(f"<li>{e(x)}</li>" for x in xs)}</ul>'
            for head, xs in (("Likely causes", causes), ("Next steps", steps))
            if xs
        )
        folded = f"<br>{e(folded_text(item) or '')}" if folded_text(item) else ""
        rows.append(
            "<tr>"
            f'<td style="color:{color};font-weight:bold;vertical-align:top">{e(state)}</td>'
            f"<td><b>{e(item['rule'])}</b>{e(_repeat(item))}: {e(item['summary'])}<br>"
            f"<code>{e(item['metric'])}{{{e(_labels(item['labels']))}}}</code> = <b>{e(item['value_text'])}</b><br>"
            f"condition: {e(item['condition'])}<br>since: {e(_since(item))}{folded}{runbook}</td>"
            "</tr>"
        )
    footer = "<br>".join(e(x) for x in footer_lines(p))
    return (
        f"<html><body><h3>{e(subject(p))}</h3>"
        f'<table cellpadding="6" style="border-collapse:collapse">{"".join(rows)}</table>'
        f'<p style="color:#555">{footer}</p></body></html>'
    )


def slack_blocks(p: dict[str, Any]) -> list[dict[str, Any]]:
    """Block Kit: a header, one section per alert (at most 45: Slack allows 50 blocks),
    and a context line with the window, run and where to look next."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": subject(p)[:150]}},
    ]
    items = p["items"]
    for item in items[:45]:
        icon = _RESOLVED_ICON if item["status"] == "resolved" else _ICON.get(item["severity"], "")
        state = "RESOLVED" if item["status"] == "resolved" else item["severity"].upper()
        lines = [
            f"{icon} *{state}* `{item['rule']}`{_repeat(item)}: {item['summary']}",
            f"`{item['metric']}{{{_labels(item['labels'])}}}` = *{item['value_text']}*",
            f"condition: {item['condition']}",
            f"since: {_since(item)}",
        ]
        if folded_text(item):
            lines.append(str(folded_text(item)))
        causes, steps = causes_and_steps(item)
        if causes:
            lines += ["*Likely causes*", *(f"• {c}" for c in causes)]
        if steps:
            lines += ["*Next steps*", *(f"• {h}" for h in steps)]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}})
    if len(items) > 45:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"... and {len(items) - 45} more alerts"}})
    ctx = [f"window {p['window']}", f"run `{p['run_id']}`", f"route `{p['route']}`"]
    if p.get("link"):
        ctx.append(f"where to look next: {p['link']}")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(ctx)[:3000]}]})
    return blocks
