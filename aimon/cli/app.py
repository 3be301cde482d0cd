"""The `aimon` command: one module per command group, assembled here, and the one place
a failure becomes a `run failed: what failed: what to do` line with its exit status."""

from __future__ import annotations

import os
import traceback
from typing import Annotated, Any

import typer

# Typer 0.29 vendors click: its usage errors are these classes, not click's.
from typer._click.core import Context
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from aimon import __version__
from aimon.env import DEBUG_ENV, configure_prefect, debug_enabled

configure_prefect()  # before anything imports prefect

from aimon.cli.alerts import alerts_app  # noqa: E402
from aimon.cli.annotate import annotate_app  # noqa: E402
from aimon.cli.backfill import backfill  # noqa: E402
from aimon.cli.check import config_app  # noqa: E402
from aimon.cli.common import describe_error, fail  # noqa: E402
from aimon.cli.export import export_app  # noqa: E402
from aimon.cli.ingest import ingest_app  # noqa: E402
from aimon.cli.init import init  # noqa: E402
from aimon.cli.report import report  # noqa: E402
from aimon.cli.run import demo, run  # noqa: E402
from aimon.cli.slo import slo_app  # noqa: E402


def _usage_line(err: UsageError) -> None:
    path = err.ctx.command_path if err.ctx else "aimon"
    fail(err.format_message().rstrip("."), f"see `{path} --help`", err.exit_code)


class AimonGroup(TyperGroup):
    """Every command runs inside `invoke`: a usage error, or an exception no command
    turned into its own message (a driver's OperationalError, an OSError), ends as one
    `run failed:` line (exit 2 for usage, 1 otherwise), its traceback only with --debug."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except NoArgsIsHelpError:
            raise
        except UsageError as err:  # `aimon --bogus`
            _usage_line(err)

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, NoArgsIsHelpError, KeyboardInterrupt):
            raise
        except UsageError as err:  # `aimon run --dat X`, a missing --start
            _usage_line(err)
        except typer.TyperException:
            raise
        except Exception as err:
            if debug_enabled():
                traceback.print_exception(err)
            fail(describe_error(err), "rerun with --debug for the traceback" if not debug_enabled() else None, 1)


app = typer.Typer(
    cls=AimonGroup,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Batch monitoring for AI/ML systems in production.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aimon {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help=f"print the traceback of a failure, and Prefect's own error logs (also: {DEBUG_ENV}=1)"
        ),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    if debug:
        os.environ[DEBUG_ENV] = "1"  # read where Prefect starts (aimon.cli.common.start_prefect)


app.command()(init)
app.command()(run)
app.add_typer(config_app, name="config")
app.add_typer(export_app, name="export")
app.command()(demo)
app.command()(backfill)
app.command()(report)
app.add_typer(alerts_app, name="alerts")
app.add_typer(annotate_app, name="annotate")
app.add_typer(slo_app, name="slo")
app.add_typer(ingest_app, name="ingest")


def main() -> None:
    app()
