"""`aimon config check`: validate the config, connect to what it names, send nothing."""

from __future__ import annotations

import typer

from aimon.cli.common import ConfigOpt, console, err_console, load
from aimon.errors import AimonError
from aimon.store.metrics import Store
from aimon.tasks.plan import RunPlan, plan_run, recent_models
from aimon.warehouse import Warehouse, redact

config_app = typer.Typer(no_args_is_help=True, help="Check the configuration.")


def print_plan(plan: RunPlan) -> int:
    """The analyzers a run will execute or skip, and why; the rules it can never judge.
    Returns the problems (an analyzer that will fail)."""
    console.print("analyzers:")
    for a in plan.analyzers:
        style = {"run": "green", "skipped": "yellow", "fails": "red"}[a.status]
        mark = f"[{style}]{a.status}[/{style}]" + " " * (7 - len(a.status))
        console.print(f"  {mark} {a.name:<12} {a.why}", soft_wrap=True, highlight=False)
        for part in a.without:
            console.print(f"  {'':<7} {'':<12} without {part}", soft_wrap=True, highlight=False)
    for note in plan.notes:
        console.print(f"[yellow]note[/yellow] {note}", soft_wrap=True)
    if plan.unjudged:
        console.print(f"[yellow]{len(plan.unjudged)} alert rules can never be judged[/yellow] with this mapping:")
        for r in plan.unjudged:
            console.print(f"  {r.rule} ({r.metric}): {r.why}", soft_wrap=True, highlight=False)
    return sum(a.status == "fails" for a in plan.analyzers)


@config_app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Validate the config, connect to the warehouse and the store, say which analyzers
    will run or be skipped (and why) and which alert rules can never be judged."""
    cfg = load(config)
    console.print(f"[green]ok[/green] {cfg.source}: valid")
    problems = 0
    try:
        wh = Warehouse(cfg.warehouse, cfg.store)
        ix = wh.describe()
        console.print(
            f"[green]ok[/green] warehouse {redact(cfg.warehouse.url)}: table {cfg.warehouse.interactions_table!r} "
            f"maps {len(ix.present)} contract columns"
        )
        problems += print_plan(plan_run(cfg, ix, recent_models(wh, ix)))
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
    from aimon.tasks.alerts.channels import build_channel  # noqa: PLC0415  lazy: slack-sdk; Prefect via aimon.tasks

    for name, channel in cfg.alerts.channels.items():
        try:
            build_channel(name, channel)
            console.print(f"[green]ok[/green] alert channel {name} ({channel.type}): secrets found")
        except AimonError as err:
            problems += 1
            err_console.print(f"[red]alert channel {name}[/red]: {err}")
    if cfg.pushgateway.url:
        from aimon.tasks.prometheus import check_gateway, safe_url  # noqa: PLC0415  lazy: Prefect via aimon.tasks

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
