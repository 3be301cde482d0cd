"""The `aimon` command: one module per command group, assembled here."""

from __future__ import annotations

import typer

from aimon.env import configure_prefect

configure_prefect()  # before anything imports prefect

from aimon.cli.alerts import alerts_app  # noqa: E402
from aimon.cli.backfill import backfill  # noqa: E402
from aimon.cli.check import config_app  # noqa: E402
from aimon.cli.export import export_app  # noqa: E402
from aimon.cli.run import demo, run  # noqa: E402

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Batch monitoring for AI/ML systems in production.",
)
app.command()(run)
app.add_typer(config_app, name="config")
app.add_typer(export_app, name="export")
app.command()(demo)
app.command()(backfill)
app.add_typer(alerts_app, name="alerts")


def main() -> None:
    app()
