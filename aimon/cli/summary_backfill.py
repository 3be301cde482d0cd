"""Backfill plans and results: rich tables for the terminal, documents for --format json."""

from __future__ import annotations

import datetime as dt
import signal
from typing import TYPE_CHECKING, Any

from rich.table import Table

from aimon.cli.summary_json import window_doc

if TYPE_CHECKING:
    from aimon.flows.backfill import BackfillPlan, BackfillReport

STYLE = {
    "success": "green",
    "degraded": "yellow",
    "failed": "red",
    "skipped": "dim",
    "interrupted": "magenta",
    "would run": "cyan",
}


def plan_table(plan: BackfillPlan) -> Table:
    t = Table(
        title=f"backfill plan: redo={plan.redo}, {plan.order} first, {plan.concurrency} at a time",
        title_justify="left",
    )
    for col in ("#", "window", "UTC bounds", "action"):
        t.add_column(col)
    for i, w in enumerate(plan.to_run, start=1):
        t.add_row(str(i), w.label, f"[{w.start:%Y-%m-%d %H:%M}, {w.end:%Y-%m-%d %H:%M})", "[cyan]would run[/cyan]")
    for o in sorted(plan.skipped, key=lambda o: o.window.start):
        w = o.window
        t.add_row("", w.label, f"[{w.start:%Y-%m-%d %H:%M}, {w.end:%Y-%m-%d %H:%M})", f"[dim]skip: {o.note}[/dim]")
    return t


def backfill_table(report: BackfillReport, title: str) -> Table:
    """Windows by outcome, then one line per failed or degraded window with its error."""
    t = Table(title=f"{title}: windows by outcome", title_justify="left")
    for col in ("outcome", "windows", "first", "last", "note"):
        t.add_column(col, justify="right" if col == "windows" else "left")
    for outcome, items in report.by_outcome.items():
        notes = sorted({o.note for o in items if o.note})
        note = "" if outcome in ("failed", "degraded") else ("; ".join(notes[:2]) + (" ..." if len(notes) > 2 else ""))
        style = STYLE.get(outcome, "")
        t.add_row(
            f"[{style}]{outcome}[/{style}]" if style else outcome,
            str(len(items)),
            items[0].window.label,
            items[-1].window.label,
            note,
        )
    for outcome in ("failed", "degraded"):
        for o in report.by_outcome.get(outcome, []):
            t.add_row(f"  {outcome}", "", o.window.label, "", (o.note or "")[:200])
    return t


def plan_doc(plan: BackfillPlan, granularity: str, first: dt.date, last: dt.date) -> dict[str, Any]:
    """`backfill --dry-run --format json`: the windows in the order of the text table."""
    skipped = sorted(plan.skipped, key=lambda o: o.window.start)
    return {
        "range": {"start": first, "end": last, "granularity": granularity},
        "redo": plan.redo,
        "order": plan.order,
        "concurrency": plan.concurrency,
        "windows": [{"window": window_doc(w), "action": "run", "reason": None} for w in plan.to_run]
        + [{"window": window_doc(o.window), "action": "skip", "reason": o.note} for o in skipped],
        "to_run": len(plan.to_run),
        "skipped": len(plan.skipped),
    }


def report_doc(
    report: BackfillReport,
    granularity: str,
    first: dt.date,
    last: dt.date,
    *,
    interrupted_by: int | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """`backfill --format json`: every window's outcome, oldest first, the counts, and the
    status the exit code says (0 success; 1 failed or degraded; 128+n interrupted)."""
    if interrupted_by is not None:
        status = "interrupted"
    elif error or report.count("failed"):
        status = "failed"
    else:
        status = "degraded" if report.count("degraded") else "success"
    return {
        "status": status,
        "error": error,
        "range": {"start": first, "end": last, "granularity": granularity},
        "windows": [
            {
                "window": window_doc(o.window),
                "outcome": o.outcome,
                "run_id": o.run_id,
                "note": o.note,
                "seconds": o.seconds,
            }
            for o in sorted(report.outcomes, key=lambda o: o.window.start)
        ],
        "outcomes": {k: len(v) for k, v in report.by_outcome.items()},
        "interrupted_by": signal.Signals(interrupted_by).name if interrupted_by is not None else None,
    }
