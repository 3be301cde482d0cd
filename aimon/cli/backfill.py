"""`aimon backfill`: every window of a date range, a bounded number at a time."""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aimon.cli.common import (
    ConfigOpt,
    Format,
    FormatOpt,
    Output,
    console,
    err_console,
    fail,
    load,
    output,
    start_prefect,
)
from aimon.cli.summary_backfill import backfill_table, plan_doc, plan_table, report_doc
from aimon.errors import AimonError


def backfill(
    start: Annotated[str, typer.Option(help="first local date, YYYY-MM-DD")],
    end: Annotated[str, typer.Option(help="last local date, YYYY-MM-DD (inclusive)")],
    config: ConfigOpt = None,
    granularity: Annotated[str, typer.Option(help="daily or hourly")] = "daily",
    redo: Annotated[
        str, typer.Option(help="missing: skip windows whose run finished; failed: also rerun failed/degraded; all")
    ] = "missing",
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="windows at a time (default orchestration.backfill_concurrency)")
    ] = None,
    order: Annotated[
        str | None, typer.Option(help="oldest or newest first (default orchestration.backfill_order)")
    ] = None,
    notify: Annotated[bool, typer.Option("--notify", help="send the alerts of historical windows too")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would run, run nothing")] = False,
    allow_partial: Annotated[
        bool,
        typer.Option(
            "--allow-partial", help="run a window that has not ended as a provisional one (default: refuse the range)"
        ),
    ] = False,
    fmt: FormatOpt = Format.text,
) -> None:
    """Monitor every window from --start to --end, a bounded number at a time, skipping
    windows already complete unless --redo says otherwise."""
    with output(fmt) as out:
        _backfill(out, start, end, config, granularity, redo, concurrency, order, notify, dry_run, allow_partial)


def _backfill(
    out: Output,
    start: str,
    end: str,
    config: Path | None,
    granularity: str,
    redo: str,
    concurrency: int | None,
    order: str | None,
    notify: bool,
    dry_run: bool,
    allow_partial: bool,
) -> None:
    if granularity not in ("daily", "hourly"):
        fail("bad --granularity", f"use daily or hourly, not {granularity!r}", 2)
    try:
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    except ValueError:
        fail("bad --start/--end", f"use YYYY-MM-DD dates, not {start!r} / {end!r}", 2)
    cfg = load(config)

    start_prefect()
    # lazy: Prefect costs ~2 s to import, and bad usage above should fail fast
    from aimon.flows.backfill import (  # noqa: PLC0415
        BackfillPlan,
        BackfillReport,
        WindowOutcome,
        listening,
        plan_backfill,
        stoppable,
    )

    try:
        plan = plan_backfill(cfg, first, last, granularity, redo, order, concurrency, allow_partial=allow_partial)
    except ValueError as err:
        fail("bad backfill", str(err), 2)
    except AimonError as err:
        fail("backfill planning failed", str(err), err.exit_code)
    if dry_run and out.json:
        out.emit(plan_doc(plan, granularity, first, last))
        return
    if dry_run:
        console.print(plan_table(plan))
        console.print(f"dry run: {len(plan.to_run)} windows would run, {len(plan.skipped)} skipped")
        return
    if not plan.to_run and out.json:
        out.emit(report_doc(BackfillReport(plan.skipped), granularity, first, last))
        return
    if not plan.to_run:
        console.print(backfill_table(BackfillReport(plan.skipped), f"backfill {granularity} {first}..{last}"))
        console.print("nothing to run (use --redo failed or --redo all to run complete windows again)")
        return

    from aimon.flows.backfill import backfill as backfill_flow  # noqa: PLC0415  lazy: Prefect

    outcomes: list[WindowOutcome] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console if out.json else console,  # stdout holds the JSON alone
        disable=out.json,
    ) as bar:
        job = bar.add_task("starting Prefect ...", total=len(plan.to_run))

        def on_event(event: BackfillPlan | WindowOutcome) -> None:
            if isinstance(event, BackfillPlan):
                bar.update(job, total=len(event.to_run), description=f"backfill {granularity}")
                outcomes.extend(event.skipped)
                return
            outcomes.append(event)
            bar.update(job, advance=1, description=f"{event.window.label}: {event.outcome}")

        with listening(on_event), interruptible() as stop, stoppable(stop.event, stop):
            state = backfill_flow(
                start=first,
                end=last,
                granularity=granularity,
                redo=redo,
                concurrency=concurrency,
                order=order,
                notify=notify,
                config_path=cfg.source,
                allow_partial=allow_partial,
                return_state=True,
            )
    report = BackfillReport(tuple(outcomes))
    if out.json:
        error = str(state.message) if state.is_failed() else None
        out.emit(report_doc(report, granularity, first, last, interrupted_by=stop.signum, error=error))
    else:
        console.print(backfill_table(report, f"backfill {granularity} {first}..{last}"))
    if stop.signum is not None:
        fail(
            f"backfill interrupted by {signal.Signals(stop.signum).name}: {report.count('interrupted')} windows "
            "not started; the ones in progress finished and released their claims",
            f"run the same backfill again to do the rest (--redo {redo} skips what finished)",
            128 + stop.signum,
        )
    if state.is_failed() and not report.count("failed"):
        fail("backfill failed", str(state.message))
    bad = report.count("failed") + report.count("degraded")
    if bad:
        fail(
            f"{bad} of {len(report.outcomes)} windows failed or ended degraded (listed above)",
            "fix the cause and rerun them with --redo failed",
        )


class Interrupt:
    """The first SIGINT or SIGTERM starts no more windows (the flow checks `event`); the
    windows in progress finish. A second one stops waiting for them (KeyboardInterrupt):
    each still commits or rolls back its own transaction, and a claim left behind
    expires after orchestration.claim_expires_after_seconds."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.signum = signum
        self.event.set()
        err_console.print(
            f"[yellow]{signal.Signals(signum).name}[/yellow]: starting no more windows; waiting for the ones in "
            "progress to finish (again to stop waiting)"
        )


@contextlib.contextmanager
def interruptible() -> Iterator[Interrupt]:
    stop = Interrupt()
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield stop
        return
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
