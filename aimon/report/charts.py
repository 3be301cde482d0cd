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
import itertools
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
        isfinite = math.isfinite
        return sum(
            sum(1 for v in t.y if v is not None and isfinite(v)) for t in self.traces if t.style in ("data", "bar")
        )


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


def fmt_all(values: Sequence[float | None]) -> list[str]:
    """`fmt` of each value (inlined: a chart's CSV formats every value of every trace,
    tens of thousands per build, and report.after_run builds after every run)."""
    return [
        "" if v is None else str(int(v)) if v.is_integer() and -1e15 < v < 1e15 else format(v, ".6g") for v in values
    ]


def csv_text(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """The CSV (Python's csv module, minimal quoting). Most of a report's CSV is its
    charts' numbers, where no field needs quoting: then the fields are joined as they
    are (a ninth of the csv writer's time), the same text."""
    lines = [columns, *rows]
    if all(len(r) > 1 for r in lines):  # the writer quotes a row of one empty field
        try:
            text = "\n".join([",".join(r) for r in lines])
        except TypeError:  # not all text (numbers, None): the writer formats them
            pass
        else:
            commas = sum(len(r) - 1 for r in lines)
            if (
                text.count(",") == commas
                and text.count("\n") == len(lines) - 1
                and '"' not in text
                and "\r" not in text
            ):
                return text + "\n"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerows(lines)
    return buf.getvalue()


def csv_link(
    name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], text: str = "CSV", link_id: str | None = None
) -> str:
    """A download link carrying the numbers in a data: URI (base64 CSV): no server needed."""
    b64 = base64.b64encode(csv_text(columns, rows).encode()).decode()
    lid = f' id="{esc(link_id)}"' if link_id else ""
    return f'<a class="aimon-csv"{lid} download="{esc(name)}.csv" href="data:text/csv;base64,{b64}">{esc(text)}</a>'


def table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, table_id: str | None = None, cls: str = "aimon-table"
) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    tid = f' id="{esc(table_id)}"' if table_id else ""
    return f'<table class="{cls}"{tid}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _numbers_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """`table` of a chart's numbers: the first column escaped, the others are `fmt`
    output (digits, sign, point, exponent, inf or nan: nothing to escape)."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(f"<tr><td>{esc(r[0])}</td><td>{'</td><td>'.join(r[1:])}</td></tr>" for r in rows)
    return f'<table class="aimon-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


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
    xs = list(dict.fromkeys(itertools.chain.from_iterable(t.x for t in chart.traces)))
    if chart.x_type == "date":
        xs.sort()
    cols = [chart.x_name] + [t.name for t in chart.traces]
    columns: list[list[str]] = [xs]
    for t in chart.traces:
        if t.x == xs:  # most traces: a value in every row
            columns.append(fmt_all(t.y))
        else:
            by_x = dict(zip(t.x, fmt_all(t.y), strict=True))
            columns.append([by_x.get(x, "") for x in xs])
    return cols, [list(r) for r in zip(*columns, strict=True)]


def _trace(t: Trace, y: list[float | None], i: int) -> dict[str, Any]:
    """`y`: the trace's values, None where not finite."""
    color = _COLORS[i % len(_COLORS)]
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
    isfinite = math.isfinite
    ys = [[v if v is not None and isfinite(v) else None for v in t.y] for t in chart.traces]
    n = sum(len(y) - y.count(None) for t, y in zip(chart.traces, ys, strict=True) if t.style in ("data", "bar"))
    if n == 0:
        return (
            f'<div class="aimon-nochart" id="{cid}" data-points="0">{title}'
            f'<p class="aimon-caption aimon-empty">{esc(chart.empty)}</p></div>'
        )
    data_i = 0
    traces = []
    for t, y in zip(chart.traces, ys, strict=True):
        traces.append(_trace(t, y, data_i))
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
        " Shaded: windows where an alert on these series was firing (red; recovering or folded into another"
        " alert included) or pending (orange)."
        if chart.marks
        else ""
    )
    caption = f'<p class="aimon-caption">{esc(chart.caption + marks)}</p>' if chart.caption or marks else ""
    return (
        f'<div class="aimon-chart" id="{cid}" data-points="{n}">{title}{frag}{caption}'
        f"<details><summary>numbers{esc(more)}</summary>{_numbers_table(cols, shown)}</details>"
        f"{csv_link(chart.id, cols, rows, 'download CSV')}</div>"
    )
