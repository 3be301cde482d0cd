"""`aimon report`: build the static HTML report from the store and print where it is."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from aimon.cli.common import ConfigOpt, console, fail, load
from aimon.errors import AimonError
from aimon.report import build_report


def _date(text: str | None, flag: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        fail(f"bad {flag}", f"{text!r} is not YYYY-MM-DD", 2)


def report(
    config: ConfigOpt = None,
    start: Annotated[
        str | None, typer.Option(help="first local date to show, YYYY-MM-DD (default: the first stored)")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="last local date to show, YYYY-MM-DD (default: the last stored)")
    ] = None,
    granularity: Annotated[
        str | None, typer.Option(help="daily or hourly (default: daily if the store has daily runs)")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="folder to write the site to (default: report.output, else AIMON_HOME/report)"),
    ] = None,
) -> None:
    """Build the HTML report (index.html, a page per window and per concern) from the
    stored figures, runs and alerts, and print its file:// address. No server needed."""
    if granularity is not None and granularity not in ("daily", "hourly"):
        fail("bad --granularity", f"use daily or hourly, not {granularity!r}", 2)
    first, last = _date(start, "--start"), _date(end, "--end")
    if first and last and first > last:
        fail("bad usage", f"--start {first} is after --end {last}", 2)
    cfg = load(config)
    try:
        res = build_report(cfg, output=output, start=first, end=last, granularity=granularity)
    except AimonError as err:
        fail(str(err), code=err.exit_code)
    what = res.problem or f"{res.windows} {res.granularity} windows"
    console.print(f"report: {what}; {res.pages} pages in {res.seconds:.1f}s", highlight=False)
    # The address alone on the last line, for scripts and a click in the terminal.
    print(res.url)
