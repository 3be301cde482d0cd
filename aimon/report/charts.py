"""Charts and tables as HTML fragments: plotly figures (the library's own `to_html`
fragments, its JavaScript shipped once in assets/), each with its numbers as a table
and a CSV download.

Every chart is a `<div class="aimon-chart" id=... data-points=N>`: N is the number of
values plotted, so a browser test can check each chart has data. A chart with nothing
to plot is a `<div class="aimon-nochart" id=... data-points="0">` with a caption
saying why, never an empty plot.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import plotly.io as pio

Style = Literal["data", "bar", "threshold", "bound", "baseline", "ci_low", "ci_high"]

TABLE_ROWS = 60  # a chart's table shows its last 60 windows; the CSV has every one
HEIGHT = "340px"
_CONFIG = {"displaylogo": False, "responsive": True}
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


@dataclass
class Trace:
    name: str
    x: list[str]  # window starts, local time "YYYY-MM-DD HH:MM"
    y: list[float | None]
    style: Style = "data"


@dataclass
class Mark:
    """A window shaded on the chart (an alert firing or pending there)."""

    x0: str
    x1: str
    status: str  # firing | pending


@dataclass
class Chart:
    id: str
    title: str
    y_title: str = ""
    traces: list[Trace] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    caption: str = ""
    empty: str = "no values stored for this chart in the chosen windows"  # the caption when nothing is plotted
    percent: bool = False
    log_y: bool = False
    x_type: str = "date"  # or "category" (a distribution's bins or categories)
    x_name: str = "window"  # the CSV's first column
    barmode: str = "stack"

    @property
    def points(self) -> int:
        return sum(1 for t in self.traces if t.style in ("data", "bar") for v in t.y if finite(v) is not None)


def finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def slug(text: str) -> str:
    """A stable id fragment: lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def fmt(v: float | None) -> str:
    if v is None:
        return ""
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return format(v, ".6g")


def csv_link(
    name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], text: str = "CSV", link_id: str | None = None
) -> str:
    """A download link carrying the numbers in a data: URI (base64 CSV): no server needed."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    w.writerows(rows)
    b64 = base64.b64encode(buf.getvalue().encode()).decode()
    lid = f' id="{esc(link_id)}"' if link_id else ""
    return f'<a class="aimon-csv"{lid} download="{esc(name)}.csv" href="data:text/csv;base64,{b64}">{esc(text)}</a>'


def table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, table_id: str | None = None, cls: str = "aimon-table"
) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    tid = f' id="{esc(table_id)}"' if table_id else ""
    return f'<table class="{cls}"{tid}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


class Raw(str):
    """Cell content that is already HTML (a link)."""


def _cell(v: Any) -> str:
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, float):
        return fmt(v)
    return "" if v is None else esc(v)


def chart_numbers(chart: Chart) -> tuple[list[str], list[list[Any]]]:
    """The chart's numbers, one row per window, one column per trace."""
    xs = list(dict.fromkeys(x for t in chart.traces for x in t.x))
    if chart.x_type == "date":
        xs.sort()
    cols = [chart.x_name] + [t.name for t in chart.traces]
    by_trace = [dict(zip(t.x, t.y, strict=True)) for t in chart.traces]
    rows = [[x] + [fmt(d.get(x)) for d in by_trace] for x in xs]
    return cols, rows


def _trace(t: Trace, i: int) -> dict[str, Any]:
    color = _COLORS[i % len(_COLORS)]
    y = [finite(v) for v in t.y]
    base = {
        "type": "scatter",
        "name": t.name,
        "x": t.x,
        "y": y,
        "hovertemplate": "%{x}: %{y:.4g}<extra>%{fullData.name}</extra>",
    }
    if t.style == "bar":
        return {**base, "type": "bar", "marker": {"color": color}}
    if t.style == "data":
        return {**base, "mode": "lines+markers", "line": {"color": color, "width": 2}, "marker": {"size": 5}}
    if t.style == "threshold":
        return {**base, "mode": "lines", "line": {"color": "#d62728", "dash": "dash", "width": 1.5}}
    if t.style == "baseline":
        return {**base, "mode": "lines", "line": {"color": "#999", "dash": "dot", "width": 1}}
    if t.style == "bound":  # filled down to the baseline trace drawn just before it: the band
        return {
            **base,
            "mode": "lines",
            "line": {"color": "#d62728", "dash": "dot", "width": 1},
            "fill": "tonexty",
            "fillcolor": "rgba(214,39,40,0.08)",
        }
    if t.style == "ci_low":
        return {**base, "mode": "lines", "line": {"width": 0}, "showlegend": False}
    return {**base, "mode": "lines", "line": {"width": 0}, "fill": "tonexty", "fillcolor": "rgba(31,119,180,0.18)"}


def render(chart: Chart) -> str:
    cid = esc(chart.id)
    title = f"<h3>{esc(chart.title)}</h3>"
    n = chart.points
    if n == 0:
        return (
            f'<div class="aimon-nochart" id="{cid}" data-points="0">{title}'
            f'<p class="aimon-caption aimon-empty">{esc(chart.empty)}</p></div>'
        )
    data_i = 0
    traces = []
    for t in chart.traces:
        traces.append(_trace(t, data_i))
        data_i += t.style in ("data", "bar")
    shapes = [
        {
            "type": "rect",
            "xref": "x",
            "yref": "paper",
            "x0": m.x0,
            "x1": m.x1,
            "y0": 0,
            "y1": 1,
            "line": {"width": 0},
            "fillcolor": "rgba(214,39,40,0.15)" if m.status == "firing" else "rgba(255,165,0,0.15)",
            "layer": "below",
        }
        for m in chart.marks
    ]
    yaxis: dict[str, Any] = {"title": {"text": chart.y_title}, "zeroline": False}
    if chart.percent:
        yaxis["tickformat"] = ".1%"
    if chart.log_y:
        yaxis["type"] = "log"
    layout = {
        "margin": {"l": 60, "r": 20, "t": 10, "b": 40},
        "xaxis": {"type": chart.x_type},
        "yaxis": yaxis,
        "shapes": shapes,
        "legend": {"orientation": "h", "y": -0.18},
        "hovermode": "closest",
        "barmode": chart.barmode,
        "template": {"layout": {"plot_bgcolor": "#fff", "paper_bgcolor": "#fff"}},
    }
    frag = pio.to_html(
        {"data": traces, "layout": layout},
        full_html=False,
        include_plotlyjs=False,
        validate=False,
        div_id=f"{chart.id}-plot",
        default_height=HEIGHT,
        config=_CONFIG,
    )
    cols, rows = chart_numbers(chart)
    shown = rows[-TABLE_ROWS:]
    more = f" (the last {len(shown)} of {len(rows)} windows; the CSV has all)" if len(rows) > len(shown) else ""
    marks = (
        " Shaded: windows where an alert on these series was firing (red) or pending (orange)." if chart.marks else ""
    )
    caption = f'<p class="aimon-caption">{esc(chart.caption + marks)}</p>' if chart.caption or marks else ""
    return (
        f'<div class="aimon-chart" id="{cid}" data-points="{n}">{title}{frag}{caption}'
        f"<details><summary>numbers{esc(more)}</summary>{table(cols, shown)}</details>"
        f"{csv_link(chart.id, cols, rows, 'download CSV')}</div>"
    )
