"""Backfill plans and results as rich tables for the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

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
