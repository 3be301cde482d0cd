"""From stored series to charts: one trace per series, the rules that judge them drawn
over them (aimon.report.bands), and their alert windows shaded."""

from __future__ import annotations

from collections.abc import Sequence

from aimon.records import ALL, labels_json
from aimon.report.bands import alert_marks, rule_traces, rules_for
from aimon.report.charts import Chart, Trace
from aimon.report.data import Points, ReportData

MAX_RULED = 4  # series per chart that get their rule's lines (more would hide the data)


def label_text(labels: dict[str, str], drop: Sequence[str] = ()) -> str:
    parts = [f"{k}={'all' if v == ALL else v}" for k, v in sorted(labels.items()) if k not in drop]
    return ", ".join(parts) or "all"


def trace_of(data: ReportData, name: str, points: Points, style: str = "data") -> Trace:
    starts = sorted(points)
    known, x = data.xlabels, data.x
    xs = [known[s] if s in known else x(s) for s in starts]
    return Trace(name, xs, [points[s] for s in starts], style)  # type: ignore[arg-type]


def series_chart(
    data: ReportData,
    chart_id: str,
    title: str,
    metric: str,
    series: Sequence[tuple[str, dict[str, str], Points]],
    *,
    y_title: str = "",
    caption: str = "",
    percent: bool = False,
    bars: bool = False,
    rules: bool = True,
) -> Chart:
    """`series`: (trace name, labels, points). The rules of `metric` that judge a series
    are drawn for the first MAX_RULED such series."""
    chart = Chart(chart_id, title, y_title, caption=caption, percent=percent)
    chart.empty = f"no {metric} values stored in {data.range_text}" + (
        "" if data.figures.get(metric) else " (the metric was never computed: is its analyzer configured?)"
    )
    extra: list[Trace] = []
    ruled = 0
    all_x = [data.x(w.start) for w in data.windows]
    seen_thresholds: set[tuple[str, float]] = set()
    alerted = {e.labels for e in data.events if e.metric == metric}
    chart.traces = [trace_of(data, name, points, "bar" if bars else "data") for name, _, points in series]
    # The series that alerted get their rule's lines first.
    for name, labels, points in sorted(series, key=lambda s: labels_json(s[1]) not in alerted):
        if not rules or ruled >= MAX_RULED or not points:
            continue
        applied = rules_for(data, metric, labels)
        for rule in applied:
            lines = rule_traces(rule, data, points, labels, all_x, name if len(series) > 1 else "")
            for line in lines:
                if line.style == "threshold":  # one threshold line per rule, not one per series
                    key = (rule.name, rule.threshold or 0.0)
                    if key in seen_thresholds:
                        continue
                    seen_thresholds.add(key)
                extra.append(line)
        ruled += bool(applied)
    chart.traces += extra
    if rules:
        chart.marks = alert_marks(data, metric, [labels for _, labels, _ in series])
        names = sorted({r.name for _, labels, _ in series for r in rules_for(data, metric, labels)})
        if names:
            chart.caption = (chart.caption + f" Alert rules drawn: {', '.join(names)}.").strip()
    return chart
