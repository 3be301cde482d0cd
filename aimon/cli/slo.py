"""`aimon slo rules`: the Prometheus recording and alert rules of the config's SLOs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aimon.cli.common import ConfigOpt, err_console, fail, load
from aimon.tasks.slo_rules import render_rules

slo_app = typer.Typer(no_args_is_help=True, help="Service level objectives and their burn-rate alerts.")


@slo_app.command("rules")
def slo_rules(
    config: ConfigOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write (default: stdout)")] = None,
) -> None:
    """Print the Prometheus recording and alert rules (multiwindow, multi-burn-rate) for the
    slos: of the config, over the slo_events and slo_good_events a live run pushes:
    `aimon slo rules > deployments/prometheus/rules/slo.yml`, then `promtool check rules`."""
    cfg = load(config)
    text = render_rules(cfg)
    if output is None:
        typer.echo(text, nl=False)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as err:
            fail(f"cannot write {output}", str(err))
    if not cfg.slos:
        err_console.print(f"[yellow]no slos configured[/yellow] in {cfg.source}: the rules file has no groups")
