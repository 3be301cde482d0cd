"""The `aimon` command line. Exit status: 0 done, 1 the run failed or ended degraded,
2 bad usage or config. Errors print as `what failed: what to do`."""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from aimon.env import configure_prefect

configure_prefect()  # before anything imports prefect

from aimon.config import Config, load_config  # noqa: E402
from aimon.errors import AimonError, ConfigError  # noqa: E402

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Batch monitoring for AI/ML systems in production.",
)
config_app = typer.Typer(no_args_is_help=True, help="Check the configuration.")
app.add_typer(config_app, name="config")
# Wide enough for the figures table when piped (CI logs, `| less`); a terminal keeps its width.
console = Console(width=None if sys.stdout.isatty() else 132)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 132)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="YAML config (default: $AIMON_CONFIG, then configs/monitoring.yaml)")
]


def _fail(what: str, todo: str | None = None, code: int = 1) -> NoReturn:
    err_console.print(f"[red]{what}[/red]" + (f": {todo}" if todo else ""))
    raise typer.Exit(code)


def _load(path: Path | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as err:
        _fail("config error", str(err), 2)


def _run_window(cfg: Config, granularity: str, window_start: str | None, notify: bool | None = None) -> Any:
    from aimon.flows.monitor import monitor_window

    # The flow loads the file itself: deployments pass it only the path.
    return monitor_window(granularity=granularity, window_start=window_start, config_path=cfg.source, notify=notify)


@app.command()
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
) -> None:
    """Monitor one window: the last complete one unless --date or --window-start is given."""
    from aimon.cli.summary import print_summary

    if granularity not in ("daily", "hourly"):
        _fail("bad --granularity", f"use daily or hourly, not {granularity!r}", 2)
    if date and window_start:
        _fail("bad usage", "give --date or --window-start, not both", 2)
    if date:
        try:
            dt.date.fromisoformat(date)
        except ValueError:
            _fail("bad --date", f"{date!r} is not YYYY-MM-DD", 2)
        if granularity == "hourly":
            _fail("bad usage", "--date picks a daily window; use --window-start for an hourly one", 2)
    cfg = _load(config)
    try:
        summary = _run_window(cfg, granularity, date or window_start, notify)
    except ValueError as err:
        _fail("bad window", str(err), 2)
    except AimonError as err:
        _fail("run failed", str(err), err.exit_code)
    if summary.status == "skipped":  # another run holds the window's claim: not a failure
        console.print(f"[yellow]skipped[/yellow]: {'; '.join(summary.notes)}")
        return
    print_summary(summary, console)
    if summary.status != "success":
        raise typer.Exit(1)


@config_app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Validate the config, connect to the warehouse and the store, say what is wrong."""
    from aimon.store.metrics import Store
    from aimon.warehouse import Warehouse, redact

    cfg = _load(config)
    console.print(f"[green]ok[/green] {cfg.source}: valid")
    problems = 0
    try:
        ix = Warehouse(cfg.warehouse).describe()
        absent = [
            c
            for c in ("endpoint", "latency_seconds", "input_tokens", "output_tokens", "cost_usd")
            if c not in ix.present
        ]
        console.print(
            f"[green]ok[/green] warehouse {redact(cfg.warehouse.url)}: table {cfg.warehouse.interactions_table!r} "
            f"maps {len(ix.present)} contract columns"
            + (f" (without {', '.join(absent)}: their figures are skipped)" if absent else "")
        )
    except AimonError as err:
        problems += 1
        err_console.print(f"[red]warehouse[/red]: {err}")
    try:
        store = Store(cfg)
        store.ensure()
        console.print(f"[green]ok[/green] store: {store.where}")
    except AimonError as err:
        problems += 1
        err_console.print(f"[red]store[/red]: {err}")
    # Alert channels: their secrets resolve (nothing is sent).
    from aimon.tasks.alerts.channels import build_channel

    for name, channel in cfg.alerts.channels.items():
        try:
            build_channel(name, channel)
            console.print(f"[green]ok[/green] alert channel {name} ({channel.type}): secrets found")
        except AimonError as err:
            problems += 1
            err_console.print(f"[red]alert channel {name}[/red]: {err}")
    if cfg.pushgateway.url:
        from aimon.tasks.prometheus import check_gateway, safe_url

        gw = safe_url(cfg.pushgateway.url)
        why = check_gateway(cfg.pushgateway)
        if why is None:
            console.print(
                f"[green]ok[/green] pushgateway {gw}: ready (live windows are pushed as job={cfg.pushgateway.job})"
            )
        else:
            problems += 1
            err_console.print(f"[red]pushgateway[/red] {gw}: {why}: start it, or remove pushgateway.url to not push")
    if problems:
        raise typer.Exit(1)


export_app = typer.Typer(no_args_is_help=True, help="Export stored figures.")
app.add_typer(export_app, name="export")


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
    from aimon.store.metrics import Store
    from aimon.store.openmetrics import too_recent, write_openmetrics
    from aimon.windows import daily_window

    try:
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    except ValueError:
        _fail("bad --start/--end", f"use YYYY-MM-DD dates, not {start!r} and {end!r}", 2)
    if last < first:
        _fail("bad usage", f"--end {end} is before --start {start}", 2)
    if granularity not in (None, "daily", "hourly"):
        _fail("bad --granularity", f"use daily or hourly, not {granularity!r}", 2)
    cfg = _load(config)
    tz = cfg.windows.timezone
    lo, hi = daily_window(first, tz).start, daily_window(last, tz).end
    store = Store(cfg)
    # A file is written beside its name and renamed at the end: never half a file.
    tmp = None if output is None else output.with_name(output.name + ".part")
    try:
        with contextlib.nullcontext(sys.stdout) if tmp is None else tmp.open("w", encoding="utf-8") as fh:
            stats = write_openmetrics(store, fh, start=lo, end=hi, job=cfg.pushgateway.job, granularity=granularity)
    except OSError as err:
        _fail(f"cannot write {output or 'stdout'}", str(err))
    except Exception as err:  # SQLAlchemy errors: the store cannot be read
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        _fail(f"cannot read figures from {store.where}", f"{type(err).__name__}: {err}")
    for problem, n in stats.skipped.items():
        err_console.print(f"[yellow]left out {n} figures[/yellow]: {problem}")
    if stats.samples == 0:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        _fail(
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
        "into Prometheus's --storage.tsdb.path (see README, Prometheus and Grafana)"
    )
    if too_recent(stats):
        err_console.print(
            "[yellow]caution[/yellow]: some samples are less than 3 hours old; blocks for that span can overlap "
            "Prometheus's head block. Export up to 3 hours ago, or let the live pushes cover it."
        )


@app.command()
def demo(
    config: ConfigOpt = None,
    days: Annotated[int, typer.Option(min=1, help="days of history to generate")] = 14,
    rows_per_day: Annotated[int, typer.Option(min=1, help="interactions per day")] = 20_000,
    seed: Annotated[int, typer.Option(help="random seed: same seed and end date, same data")] = 7,
) -> None:
    """Seed the embedded warehouse with synthetic interactions (and incidents), monitor
    every day of it, and summarise the latest."""
    import sqlalchemy as sa

    from aimon.cli.summary import changes_vs_history, print_summary
    from aimon.demo import INCIDENTS, seed_duckdb
    from aimon.store.metrics import Store

    cfg = _load(config)
    url = sa.engine.make_url(cfg.warehouse.url)
    if url.get_backend_name() != "duckdb" or not url.database:
        _fail(
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
                summary = _run_window(cfg, "daily", day.isoformat())
            except AimonError as err:
                _fail(f"run for {day} failed", str(err), err.exit_code)
    assert summary is not None
    console.rule("latest window")
    print_summary(summary, console)
    console.rule("what it found")
    for line in changes_vs_history(summary, Store(cfg)):
        console.print(f"  {line}")
    console.print(
        "\nwhere to look next:\n"
        f"  aimon run --config {cfg.source} --date {end - dt.timedelta(days=2)}   (the error-burst day)\n"
        f"  aimon alerts list --config {cfg.source}   (and: aimon alerts history --windows)\n"
        f"  .venv/bin/python -c \"import duckdb; duckdb.connect('{url.database}', read_only=True).sql("
        f'\\"SELECT metric, labels, value FROM {cfg.store.metrics_table} WHERE window_start = '
        f"'{summary.window.start:%Y-%m-%d %H:%M:%S}' ORDER BY metric\\\").show()\"\n"
        f"  runs: table {cfg.store.runs_table}"
    )
    if summary.status != "success":
        raise typer.Exit(1)


@app.command()
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
) -> None:
    """Monitor every window from --start to --end, a bounded number at a time, skipping
    windows already complete unless --redo says otherwise."""
    from aimon.cli.summary_backfill import backfill_table, plan_table

    if granularity not in ("daily", "hourly"):
        _fail("bad --granularity", f"use daily or hourly, not {granularity!r}", 2)
    try:
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    except ValueError:
        _fail("bad --start/--end", f"use YYYY-MM-DD dates, not {start!r} / {end!r}", 2)
    cfg = _load(config)

    from aimon.flows.backfill import BackfillPlan, BackfillReport, WindowOutcome, listening, plan_backfill

    try:
        plan = plan_backfill(cfg, first, last, granularity, redo, order, concurrency)
    except ValueError as err:
        _fail("bad backfill", str(err), 2)
    except AimonError as err:
        _fail("backfill planning failed", str(err), err.exit_code)
    if dry_run:
        console.print(plan_table(plan))
        console.print(f"dry run: {len(plan.to_run)} windows would run, {len(plan.skipped)} skipped")
        return
    if not plan.to_run:
        console.print(backfill_table(BackfillReport(plan.skipped), f"backfill {granularity} {first}..{last}"))
        console.print("nothing to run (use --redo failed or --redo all to run complete windows again)")
        return

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from aimon.flows.backfill import backfill as backfill_flow

    outcomes: list[WindowOutcome] = []
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        job = bar.add_task("starting Prefect ...", total=len(plan.to_run))

        def on_event(event: BackfillPlan | WindowOutcome) -> None:
            if isinstance(event, BackfillPlan):
                bar.update(job, total=len(event.to_run), description=f"backfill {granularity}")
                outcomes.extend(event.skipped)
                return
            outcomes.append(event)
            bar.update(job, advance=1, description=f"{event.window.label}: {event.outcome}")

        with listening(on_event):
            state = backfill_flow(
                start=first,
                end=last,
                granularity=granularity,
                redo=redo,
                concurrency=concurrency,
                order=order,
                notify=notify,
                config_path=cfg.source,
                return_state=True,
            )
    report = BackfillReport(tuple(outcomes))
    console.print(backfill_table(report, f"backfill {granularity} {first}..{last}"))
    if state.is_failed() and not report.count("failed"):
        _fail("backfill failed", str(state.message))
    if report.count("failed") or report.count("degraded"):
        raise typer.Exit(1)


# `aimon alerts ...`: imported last, it uses the helpers above.
from aimon.cli.alerts import alerts_app  # noqa: E402

app.add_typer(alerts_app, name="alerts")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
