"""`aimon export openmetrics`: stored figures as OpenMetrics text for promtool."""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer

from aimon.cli.common import ConfigOpt, err_console, fail, load
from aimon.store.metrics import Store
from aimon.store.openmetrics import too_recent, write_openmetrics
from aimon.windows import daily_window

export_app = typer.Typer(no_args_is_help=True, help="Export stored figures.")


@export_app.command("openmetrics")
def export_openmetrics(
    start: Annotated[str, typer.Option(help="first local date, YYYY-MM-DD")],
    end: Annotated[str, typer.Option(help="last local date, YYYY-MM-DD (included)")],
    config: ConfigOpt = None,
    granularity: Annotated[str | None, typer.Option(help="daily or hourly (default: both)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write (default: stdout)")] = None,
) -> None:
    """Write the stored figures of windows from --start to --end as OpenMetrics text,
    stamped at each window's end, for `promtool tsdb create-blocks-from openmetrics`."""
    try:
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    except ValueError:
        fail("bad --start/--end", f"use YYYY-MM-DD dates, not {start!r} and {end!r}", 2)
    if last < first:
        fail("bad usage", f"--end {end} is before --start {start}", 2)
    if granularity not in (None, "daily", "hourly"):
        fail("bad --granularity", f"use daily or hourly, not {granularity!r}", 2)
    cfg = load(config)
    tz = cfg.windows.timezone
    lo, hi = daily_window(first, tz).start, daily_window(last, tz).end
    store = Store(cfg)
    # A file is written beside its name and renamed at the end: never half a file.
    tmp = None if output is None else output.with_name(output.name + ".part")
    try:
        with contextlib.nullcontext(sys.stdout) if tmp is None else tmp.open("w", encoding="utf-8") as fh:
            stats = write_openmetrics(store, fh, start=lo, end=hi, job=cfg.pushgateway.job, granularity=granularity)
    except OSError as err:
        fail(f"cannot write {output or 'stdout'}", str(err))
    except Exception as err:  # SQLAlchemy errors: the store cannot be read
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        fail(f"cannot read figures from {store.where}", f"{type(err).__name__}: {err}")
    for problem, n in stats.skipped.items():
        err_console.print(f"[yellow]left out {n} figures[/yellow]: {problem}")
    if stats.samples == 0:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        fail(
            f"no figures stored for {granularity or 'any'} windows from {first} to {last} in {store.where}",
            "run `aimon backfill` for those dates first",
        )
    if tmp is not None and output is not None:
        tmp.replace(output)
    err_console.print(
        f"wrote {stats.samples:,} samples of {stats.series:,} series ({stats.metrics} metrics, "
        f"{len(stats.windows):,} windows) from {stats.first:%Y-%m-%d %H:%M} to {stats.last:%Y-%m-%d %H:%M} UTC"
        + (f" to {output}" if output else "")
        + "\nload them: promtool tsdb create-blocks-from openmetrics FILE OUTPUT_DIR, then move the blocks "
        "into Prometheus's --storage.tsdb.path (see the docs: Prometheus and Grafana)"
    )
    if too_recent(stats):
        err_console.print(
            "[yellow]caution[/yellow]: some samples are less than 3 hours old; blocks for that span can overlap "
            "Prometheus's head block. Export up to 3 hours ago, or let the live pushes cover it."
        )
