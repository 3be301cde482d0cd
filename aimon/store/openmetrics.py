"""Stored figures as OpenMetrics text, for `promtool tsdb create-blocks-from openmetrics`.

This is how history reaches Prometheus: the Pushgateway takes only the current
window (it rejects timestamps), so backfilled windows are exported with timestamps
and turned into TSDB blocks.

Each figure becomes one gauge sample stamped at its window's END, in seconds: that
is when the figure became known, and where a live push of the same window shows up
in Prometheus (scraped just after the window closed). History and live data then
line up on one graph. Every series carries `job` (pushgateway.job) and
`granularity`, exactly like the pushed ones.

The file streams from the metrics table in (metric, granularity, labels,
window_start) order, which is what OpenMetrics needs: a metric family's lines
together, each series' samples in time order, `# EOF` at the end.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO

import sqlalchemy as sa

from aimon.catalogue import help_text, series_problem
from aimon.store.metrics import Store
from aimon.store.schema import as_datetime

# Prometheus's head block holds roughly the last 2-3 hours; blocks created for that
# span can overlap it (promtool's docs: do not backfill the last 3 hours).
HEAD_CAVEAT = dt.timedelta(hours=3)


@dataclass
class ExportStats:
    samples: int = 0
    series: int = 0
    metrics: int = 0
    windows: set[tuple[dt.datetime, str]] = field(default_factory=set)
    first: dt.datetime | None = None  # earliest sample time (naive UTC)
    last: dt.datetime | None = None
    skipped: dict[str, int] = field(default_factory=dict)  # problem -> figures left out


def escape_label_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


_EPOCH = dt.datetime(1970, 1, 1)


def unix_seconds(ts: dt.datetime) -> str:
    """Naive UTC datetime -> Unix seconds, as an integer where it is one."""
    delta = ts - _EPOCH
    if delta.microseconds == 0:
        return str(delta.days * 86400 + delta.seconds)
    return repr(delta.total_seconds())


def series_prefix(metric: str, labels: dict[str, str]) -> str:
    """`metric{k="v",...} `: the part of a sample line shared by a series' samples."""
    return metric + "{" + ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items()) + "} "


def series_line(metric: str, labels: dict[str, str], value: float, ts: dt.datetime) -> str:
    return f"{series_prefix(metric, labels)}{format_value(value)} {unix_seconds(ts)}\n"


def _rows(store: Store, start: dt.datetime, end: dt.datetime, granularity: str | None) -> Iterator[sa.RowMapping]:
    m = store.metrics
    q = (
        sa.select(m.c.window_start, m.c.window_end, m.c.granularity, m.c.metric, m.c.labels, m.c.value)
        .where(m.c.window_start >= start, m.c.window_start < end)
        .order_by(m.c.metric, m.c.granularity, m.c.labels, m.c.window_start)
    )
    if granularity is not None:
        q = q.where(m.c.granularity == granularity)
    with store.engine.connect() as conn:
        if not sa.inspect(conn).has_table(m.name):
            return
        yield from conn.execution_options(yield_per=10_000).execute(q).mappings()


def write_openmetrics(
    store: Store,
    out: TextIO,
    *,
    start: dt.datetime,
    end: dt.datetime,
    job: str,
    granularity: str | None = None,
) -> ExportStats:
    """Write the figures of windows starting in [start, end) (naive UTC) to `out`."""
    stats = ExportStats()
    metric = None
    series = None
    prefix: str | None = None  # the current series' `name{labels} `, built once per series
    problem: str | None = None  # why the current series cannot be exported
    for row in _rows(store, start, end, granularity):
        name: str = row["metric"]
        if (name, row["granularity"], row["labels"]) != series:
            series = (name, row["granularity"], row["labels"])
            labels = json.loads(row["labels"])
            problem = series_problem(name, labels)
            if problem is not None:
                prefix = None
            else:
                if name != metric:
                    metric = name
                    out.write(f"# HELP {name} {escape_help(help_text(name))}\n# TYPE {name} gauge\n")
                    stats.metrics += 1
                stats.series += 1
                prefix = series_prefix(name, {"job": job, "granularity": row["granularity"], **labels})
        if prefix is None:
            why = problem or "not exportable"
            stats.skipped[why] = stats.skipped.get(why, 0) + 1
            continue
        ts = as_datetime(row["window_end"])
        out.write(f"{prefix}{format_value(row['value'])} {unix_seconds(ts)}\n")
        stats.samples += 1
        stats.windows.add((row["window_start"], row["granularity"]))
        if stats.first is None or ts < stats.first:
            stats.first = ts
        if stats.last is None or ts > stats.last:
            stats.last = ts
    out.write("# EOF\n")
    return stats


def too_recent(stats: ExportStats, now: dt.datetime | None = None) -> bool:
    """True when some samples fall in the span Prometheus's head block may still hold."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return stats.last is not None and stats.last > now - HEAD_CAVEAT
