"""`aimon slo rules`: the Prometheus recording and alert rules of the config's SLOs;
`aimon slo import`: OpenSLO v1 documents as `slos:` entries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from aimon.cli.common import ConfigOpt, err_console, fail, load
from aimon.config.openslo import read_openslo
from aimon.errors import ConfigError
from aimon.tasks.slo_rules import render_rules

slo_app = typer.Typer(no_args_is_help=True, help="Service level objectives and their burn-rate alerts.")


def _emit(text: str, output: Path | None) -> None:
    """`text` on stdout, or into `output`."""
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as err:
        fail(f"cannot write {output}", str(err))


@slo_app.command("rules")
def slo_rules(
    config: ConfigOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write (default: stdout)")] = None,
) -> None:
    """Print the Prometheus recording and alert rules (multiwindow, multi-burn-rate) for the
    slos: of the config, over the slo_events and slo_good_events a live run pushes:
    `aimon slo rules > deployments/prometheus/rules/slo.yml`, then `promtool check rules`."""
    cfg = load(config)
    _emit(render_rules(cfg), output)
    if not cfg.slos:
        err_console.print(f"[yellow]no slos configured[/yellow] in {cfg.source}: the rules file has no groups")


@slo_app.command("import")
def slo_import(
    path: Annotated[Path, typer.Argument(help="an OpenSLO v1 YAML file (one or more documents)")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write (default: stdout)")] = None,
) -> None:
    """Print the `slos:` section for the OpenSLO v1 SLOs of PATH (kind: SLO, Occurrences,
    a rolling window, metric sources of type aimon: docs/slos.md). Paste it into the config."""
    try:
        entries = read_openslo(path)
    except ConfigError as err:
        fail("openslo import", str(err), 2)
    _emit(yaml.safe_dump({"slos": entries}, sort_keys=False, allow_unicode=True), output)
    err_console.print(f"{len(entries)} SLO(s) from {path}")
