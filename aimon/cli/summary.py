"""The run summary a person reads in the terminal (rich)."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from aimon.cli.summary_ab import ab_tables
from aimon.cli.summary_quality import quality_table, retrieval_line
from aimon.records import ALL, MetricRecord

if TYPE_CHECKING:
    from aimon.store.metrics import Store
    from aimon.tasks.orchestration.run import RunSummary


def _index(records: tuple[MetricRecord, ...]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(r.metric, r.labels): r.value for r in records}


def _get(ix: dict[Any, float], metric: str, **labels: str) -> float | None:
    return ix.get((metric, tuple(sorted(labels.items()))))


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def figures_table(summary: RunSummary) -> Table:
    ix = _index(summary.records)
    groups = sorted(
        {(r.label("model"), r.label("endpoint")) for r in summary.records if r.metric == "llm_requests"},
        key=lambda me: (me[0] == ALL, me[0] or "", me[1] == ALL, me[1] or ""),
    )
    t = Table(title=f"{summary.window.label}: figures by model and endpoint", title_justify="left")
    for col in (
        "model",
        "endpoint",
        "requests",
        "req/min",
        "error rate",
        "p50 s",
        "p95 s",
        "p99 s",
        "tokens in",
        "tokens out",
        "cost USD",
    ):
        t.add_column(col, justify="left" if col in ("model", "endpoint") else "right")
    for m, e in groups:
        if m is None or e is None or (e == ALL and m != ALL and sum(1 for g in groups if g[0] == m) <= 2):
            continue  # a model with one endpoint: its roll-up row repeats that endpoint's
        lab = {"model": m, "endpoint": e}
        rate = _get(ix, "llm_error_rate", **lab)
        t.add_row(
            "all" if m == ALL else m,
            "all" if e == ALL else e,
            _fmt(_get(ix, "llm_requests", **lab), ",.0f"),
            _fmt(_get(ix, "llm_requests_per_minute", **lab), ",.1f"),
            "-" if rate is None else f"{rate:.2%}",
            _fmt(_get(ix, "llm_latency_seconds", quantile="0.5", **lab), ".2f"),
            _fmt(_get(ix, "llm_latency_seconds", quantile="0.95", **lab), ".2f"),
            _fmt(_get(ix, "llm_latency_seconds", quantile="0.99", **lab), ".2f"),
            _fmt(_get(ix, "llm_tokens", type="input", **lab), ",.0f"),
            _fmt(_get(ix, "llm_tokens", type="output", **lab), ",.0f"),
            _fmt(_get(ix, "llm_cost_usd", **lab), ",.2f"),
            style="bold" if m == ALL else None,
        )
    return t


def changes_vs_history(summary: RunSummary, store: Store, *, windows: int = 7, ratio: float = 1.5) -> list[str]:
    """Figures that rose more than `ratio`x above the median of the previous stored
    windows: the demo's 'what it found'. (Alert rules do this properly.) Error rates
    must also rise by 2 points, so a handful of errors in a small segment is not news."""
    watched = ("llm_error_rate", "llm_latency_seconds", "llm_cost_usd", "llm_tokens")
    w = summary.window
    span = w.end - w.start
    found = []
    for r in summary.records:
        if r.metric not in watched or (r.label("endpoint") == ALL and r.label("model") != ALL):
            continue
        if r.metric == "llm_latency_seconds" and r.label("quantile") != "0.95":
            continue
        if r.metric == "llm_tokens" and r.label("type") != "input":
            continue
        past = store.figures(
            granularity=w.granularity,
            metric=r.metric,
            labels=dict(r.labels),
            start_from=w.start - span * windows,
            before=w.start,
        )
        if len(past) < 3:
            continue
        base = statistics.median(f.value for f in past)
        if r.metric == "llm_error_rate" and r.value - base < 0.02:
            continue
        if base > 0 and r.value / base >= ratio:
            labels = ", ".join(f"{k}={v}" for k, v in r.labels if v != ALL)
            found.append(
                f"{r.metric}{{{labels}}} = {r.value:,.4g} vs median {base:,.4g} of the previous "
                f"{len(past)} windows ({r.value / base:.1f}x)"
            )
    return found


def savings_lines(summary: RunSummary, top: int = 5) -> list[str]:
    """The cost optimiser's best recommendations (aimon.tasks.costopt), one line each."""
    recs: list[dict[str, Any]] = next(
        (o.result.details.get("recommendations", []) for o in summary.outcomes if o.name == "costopt" and o.result), []
    )
    lines = [
        f"saving: {r['action']}: ~${r['monthly_usd']:,.0f}/month ({r['evidence']}; {r['confidence']} confidence)"
        for r in recs[:top]
    ]
    if len(recs) > top:
        lines.append(f"saving: {len(recs) - top} more in the report's cost page (llm_cost_saving_usd)")
    return lines


def print_summary(summary: RunSummary, console: Console | None = None) -> None:
    console = console or Console()
    colour = {"success": "green", "degraded": "yellow", "failed": "red"}[summary.status]
    c = summary.contract
    console.print(
        f"[bold]{summary.window}[/bold]  run [cyan]{summary.run_id}[/cyan]  "
        f"[{colour}]{summary.status}[/{colour}]"
        + (" [yellow]provisional[/yellow]" if summary.provisional else "")
        + f" in {summary.duration_seconds:.1f}s"
    )
    if summary.provisional:
        console.print(
            "[yellow]provisional[/yellow]: the window has not ended; its figures so far are stored with "
            "monitoring_window_provisional = 1, no finished run is recorded and no alert resolves. "
            "The run of the ended window replaces them."
        )
    if c is not None:
        console.print(f"rows: {c.accepted:,} accepted, {c.rejected_total:,} rejected")
    if c is not None and c.accepted == 0:
        console.print("[yellow]no data[/yellow]: the window holds no accepted rows; zero requests recorded")
    else:
        console.print(figures_table(summary))
    budgets = [r for r in summary.records if r.metric == "llm_budget_used_ratio"]
    for b in budgets:
        scope = b.label("scope") or ""
        forecast = summary.value("llm_cost_forecast_usd", scope=scope) if b.label("period") == "month" else None
        extra = f", month-end forecast ${forecast:,.0f}" if forecast is not None else ""
        low, high = (summary.value(f"llm_cost_forecast_usd_{end}", scope=scope) for end in ("low", "high"))
        if forecast is not None and low is not None and high is not None:
            extra += f" (interval ${low:,.0f}-${high:,.0f})"
        console.print(f"budget [bold]{scope}[/bold] ({b.label('period')}): {b.value:.0%} used{extra}")
    for line in savings_lines(summary):
        console.print(line)
    for o in summary.outcomes:  # A/B experiments: one table each (summary_ab.py)
        if o.name == "abtest" and o.result is not None and o.result.details.get("experiments"):
            for table in ab_tables(o.result.details):
                console.print(table)
    quality = quality_table(summary)
    if quality is not None:
        console.print(quality)
    retrieval = retrieval_line(summary)
    if retrieval:
        console.print(retrieval)
    for o in summary.outcomes:
        if o.error:
            console.print(f"[red]analyzer {o.name} failed[/red]: {o.error}")
    for note in summary.notes:
        console.print(f"[yellow]note[/yellow]: {note}")
    console.print(f"figures stored in {summary.stored_in} (window_start = '{summary.window.start:%Y-%m-%d %H:%M:%S}')")
