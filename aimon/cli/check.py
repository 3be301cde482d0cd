"""`aimon config check`: validate the config, connect to what it names, send nothing."""

from __future__ import annotations

from typing import Any

import typer

from aimon.cli.common import ConfigOpt, Format, FormatOpt, console, err_console, load, output
from aimon.config import Config
from aimon.engines import redact
from aimon.errors import AimonError
from aimon.store.metrics import Store
from aimon.tasks.plan import RunPlan, plan_run, recent_models
from aimon.warehouse import Warehouse

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
def config_check(config: ConfigOpt = None, fmt: FormatOpt = Format.text) -> None:
    """Validate the config, connect to the warehouse and the store, say which analyzers
    will run or be skipped (and why) and which alert rules can never be judged."""
    with output(fmt) as out:
        doc = check(load(config), text=not out.json)
        if out.json:
            out.emit(doc)
    if doc["problems"]:
        raise typer.Exit(1)


def check(cfg: Config, *, text: bool) -> dict[str, Any]:
    """Every check, printed as it goes when `text`; returns the `--format json` document."""
    say = console.print if text else _quiet
    warn = err_console.print if text else _quiet
    say(f"[green]ok[/green] {cfg.source}: valid")
    doc: dict[str, Any] = {
        "config": {"source": cfg.source, "ok": True},
        "warehouse": {
            "url": redact(cfg.warehouse.url),
            "table": cfg.warehouse.interactions_table,
            "ok": False,
            "error": None,
            "contract_columns": [],
        },
        "store": {"ok": False, "where": None, "error": None},
        "analyzers": [],
        "notes": [],
        "rules_never_judged": [],
        "channels": [],
        "pushgateway": None,
    }
    problems = 0
    try:
        wh = Warehouse(cfg.warehouse, cfg.store)
        ix = wh.describe()
        say(
            f"[green]ok[/green] warehouse {redact(cfg.warehouse.url)}: table {cfg.warehouse.interactions_table!r} "
            f"maps {len(ix.present)} contract columns"
        )
        doc["warehouse"].update(ok=True, contract_columns=sorted(ix.present))
        plan = plan_run(cfg, ix, recent_models(wh, ix))
        problems += print_plan(plan) if text else sum(a.status == "fails" for a in plan.analyzers)
        doc["analyzers"] = [
            {"name": a.name, "status": a.status, "reason": a.why, "without": a.without} for a in plan.analyzers
        ]
        doc["notes"] = plan.notes
        doc["rules_never_judged"] = [{"rule": r.rule, "metric": r.metric, "reason": r.why} for r in plan.unjudged]
    except AimonError as err:
        problems += 1
        doc["warehouse"]["error"] = str(err)
        warn(f"[red]warehouse[/red]: {err}")
    try:
        store = Store(cfg)
        store.ensure()
        say(f"[green]ok[/green] store: {store.where}")
        doc["store"].update(ok=True, where=store.where)
    except AimonError as err:
        problems += 1
        doc["store"]["error"] = str(err)
        warn(f"[red]store[/red]: {err}")
    # Alert channels: their secrets resolve (nothing is sent).
    from aimon.tasks.alerts.channels import build_channel  # noqa: PLC0415  lazy: slack-sdk; Prefect via aimon.tasks

    for name, channel in cfg.alerts.channels.items():
        try:
            build_channel(name, channel)
            say(f"[green]ok[/green] alert channel {name} ({channel.type}): secrets found")
            doc["channels"].append({"name": name, "type": channel.type, "ok": True, "error": None})
        except AimonError as err:
            problems += 1
            doc["channels"].append({"name": name, "type": channel.type, "ok": False, "error": str(err)})
            warn(f"[red]alert channel {name}[/red]: {err}")
    if cfg.pushgateway.url:
        from aimon.tasks.prometheus import check_gateway, safe_url  # noqa: PLC0415  lazy: Prefect via aimon.tasks

        gw = safe_url(cfg.pushgateway.url)
        why = check_gateway(cfg.pushgateway)
        doc["pushgateway"] = {"url": gw, "job": cfg.pushgateway.job, "ok": why is None, "error": why}
        if why is None:
            say(f"[green]ok[/green] pushgateway {gw}: ready (live windows are pushed as job={cfg.pushgateway.job})")
        else:
            problems += 1
            warn(f"[red]pushgateway[/red] {gw}: {why}: start it, or remove pushgateway.url to not push")
    doc["problems"] = problems
    return doc


def _quiet(*_args: Any, **_kwargs: Any) -> None:
    """--format json: nothing but the document on stdout."""
