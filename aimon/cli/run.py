"""`aimon run` and `aimon demo`: monitor one window, or seed the embedded warehouse and
monitor every day of it."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import sqlalchemy as sa
import typer

from aimon.cli.common import ConfigOpt, Format, FormatOpt, Output, console, fail, load, output, run_window
from aimon.cli.summary import changes_vs_history, print_summary
from aimon.cli.summary_json import run_doc
from aimon.config import Config
from aimon.demo import INCIDENTS, seed_duckdb
from aimon.errors import AimonError
from aimon.report import build_report
from aimon.store.alerts import AlertStore
from aimon.store.metrics import Store
from aimon.windows import check_ended, window_at

if TYPE_CHECKING:
    from aimon.tasks.orchestration.run import RunSummary  # Prefect: imported when a run starts


def run(
    config: ConfigOpt = None,
    granularity: Annotated[str, typer.Option(help="daily or hourly")] = "daily",
    date: Annotated[str | None, typer.Option(help="the local date of a daily window, YYYY-MM-DD")] = None,
    window_start: Annotated[
        str | None, typer.Option(help="a timestamp inside the window (local time unless it has an offset)")
    ] = None,
    notify: Annotated[
        bool | None,
        typer.Option(
            "--notify/--no-notify",
            help="send alert notifications; default: for the last complete window only",
        ),
    ] = None,
    allow_partial: Annotated[
        bool,
        typer.Option(
            "--allow-partial",
            help="run a window that has not ended as a provisional one (default: refuse it, exit 2)",
        ),
    ] = False,
    fmt: FormatOpt = Format.text,
) -> None:
    """Monitor one window: the last complete one unless --date or --window-start is given.
    A window that has not ended is refused unless --allow-partial."""
    with output(fmt) as out:
        _run(out, config, granularity, date, window_start, notify, allow_partial)


def _run(
    out: Output,
    config: Path | None,
    granularity: str,
    date: str | None,
    window_start: str | None,
    notify: bool | None,
    allow_partial: bool,
) -> None:
    if granularity not in ("daily", "hourly"):
        fail("bad --granularity", f"use daily or hourly, not {granularity!r}", 2)
    if date and window_start:
        fail("bad usage", "give --date or --window-start, not both", 2)
    if date:
        try:
            dt.date.fromisoformat(date)
        except ValueError:
            fail("bad --date", f"{date!r} is not YYYY-MM-DD", 2)
        if granularity == "hourly":
            fail("bad usage", "--date picks a daily window; use --window-start for an hourly one", 2)
    cfg = load(config)
    try:
        # Refuse an open window before Prefect starts; the flow checks again (deployments).
        check_ended(window_at(date or window_start, granularity, cfg.windows.timezone), allow_partial=allow_partial)
        summary = run_window(cfg, granularity, date or window_start, notify, allow_partial=allow_partial)
    except ValueError as err:
        fail("bad window", str(err), 2)
    except AimonError as err:
        fail(str(err), code=err.exit_code)
    if out.json:  # the alert events this run recorded: the store's word, not the notes
        w, astore = summary.window, AlertStore(cfg)
        out.emit(run_doc(summary, astore.events_between(w.start, w.end, w.granularity), astore.states()))
    elif summary.status == "skipped":  # another run holds the window's claim: not a failure
        console.print(f"[yellow]skipped[/yellow]: {'; '.join(summary.notes)}")
    else:
        print_summary(summary, console)
    if summary.status not in ("success", "skipped"):
        fail_ended(summary)


def fail_ended(summary: RunSummary) -> NoReturn:
    """A run that ended degraded or failed: its summary is above; one line says so."""
    fail(
        f"{summary.window} ended {summary.status} (run {summary.run_id})"
        + (f": {summary.error}" if summary.error else ""),
        "the figures of the analyzers that worked are stored; see the errors above and the run's "
        "artifact, fix the cause and rerun the window",
    )


def _python() -> str:
    """This interpreter, as a user would type it here (.venv/bin/python in the checkout)."""
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(Path.cwd()))
    except ValueError:
        return str(exe)


def demo(
    config: ConfigOpt = None,
    days: Annotated[int, typer.Option(min=1, help="days of history to generate")] = 14,
    rows_per_day: Annotated[int, typer.Option(min=1, help="interactions per day")] = 20_000,
    seed: Annotated[int, typer.Option(help="random seed: same seed and end date, same data")] = 7,
    live: Annotated[
        bool,
        typer.Option(help="then serve a small FastAPI app with the capture middleware, send it traffic, monitor it"),
    ] = False,
) -> None:
    """Seed the embedded warehouse with synthetic interactions (and incidents), monitor
    every day of it, and summarise the latest."""
    cfg = load(config)
    url = sa.engine.make_url(cfg.warehouse.url)
    if url.get_backend_name() != "duckdb" or not url.database:
        fail(
            "demo needs the embedded warehouse", f"warehouse.url is {cfg.warehouse.url!r}; use a duckdb:///path URL", 2
        )
    end = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    started = time.monotonic()
    counts = seed_duckdb(
        url.database,
        days=days,
        rows_per_day=rows_per_day,
        seed=seed,
        end=end,
        table=cfg.warehouse.interactions_table,
        feedback_table=cfg.warehouse.feedback_table,
    )
    console.print(
        f"seeded {url.database}: "
        + ", ".join(f"{n:,} rows in {t}" for t, n in counts.items())
        + f" ({days} days up to {end}, seed {seed}) in {time.monotonic() - started:.1f}s"
    )
    console.print("injected incidents:")
    for inc in INCIDENTS:
        console.print(f"  {end - dt.timedelta(days=inc.day_offset)}  {inc.kind}: {inc.description}")
    summary = None
    with console.status("monitoring each day (Prefect flow monitor-window)...") as status:
        for offset in range(days - 1, -1, -1):
            day = end - dt.timedelta(days=offset)
            status.update(f"monitoring {day} ...")
            try:
                summary = run_window(cfg, "daily", day.isoformat())
            except AimonError as err:
                fail(f"the run for {day}: {err}", code=err.exit_code)
    assert summary is not None
    console.rule("latest window")
    print_summary(summary, console)
    console.rule("what it found")
    for line in changes_vs_history(summary, Store(cfg)):
        console.print(f"  {line}")
    site = build_report(cfg)  # every figure over the demo's days, as HTML (aimon report)
    console.print(
        "\nwhere to look next:\n"
        f"  the report: {site.url}   ({site.pages} pages; rebuild: aimon report --config {cfg.source})\n"
        f"  aimon run --config {cfg.source} --date {end - dt.timedelta(days=2)}   (the error-burst day)\n"
        f"  aimon alerts list --config {cfg.source}   (and: aimon alerts history --windows)\n"
        f"  {_python()} -c \"import aimon; m = aimon.open('{cfg.source}'); "
        "print(m.figures('llm_error_rate', model='__all__', endpoint='__all__')[['window_start', 'value']])\"   "
        "(the Python API: docs, Python API)\n"
        f"  runs: table {cfg.store.runs_table}"
    )
    if live:
        _live(cfg, seed)
    if summary.status != "success":
        fail_ended(summary)


def _live(cfg: Config, seed: int) -> None:
    """The capture side end to end (aimon.cli.demo_live): traffic through the middleware
    into the warehouse, then the current hour monitored (provisional)."""
    try:
        from aimon.cli.demo_live import run_live  # noqa: PLC0415  FastAPI and uvicorn: the capture extra
    except ImportError as err:
        fail("aimon demo --live needs the capture extra", f"pip install 'aimon[capture]' ({err})", 2)
    console.rule("live: the capture side")
    got = run_live(cfg, seed=seed)
    console.print(
        f"served a FastAPI gateway with AimonMiddleware on 127.0.0.1:{got['port']}: {got['requests']} requests "
        f"({got['answered']} answered, the rest rate-limited), {got['rated']} rated through POST /feedback; "
        f"{got['logged']} interactions written to {cfg.warehouse.interactions_table}"
    )
    hour = got["hour"]
    try:
        summary = run_window(cfg, "hourly", hour.isoformat(), allow_partial=True)
    except AimonError as err:
        fail(f"the live hour {hour:%Y-%m-%d %H}:00: {err}", code=err.exit_code)
    console.print(f"the live hour {hour:%Y-%m-%d %H}:00 UTC (provisional: it has not ended):")
    print_summary(summary, console)
