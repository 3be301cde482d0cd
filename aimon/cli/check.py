"""`aimon config check`: validate the config, connect to what it names, send nothing."""

from __future__ import annotations

import typer

from aimon.cli.common import ConfigOpt, console, err_console, load
from aimon.errors import AimonError
from aimon.store.metrics import Store
from aimon.warehouse import Warehouse, redact

config_app = typer.Typer(no_args_is_help=True, help="Check the configuration.")


@config_app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Validate the config, connect to the warehouse and the store, say what is wrong."""
    cfg = load(config)
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
