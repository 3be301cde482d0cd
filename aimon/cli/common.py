"""What every `aimon` command shares: the consoles, the --config option, loading the
config, and failing with `what failed: what to do` and the documented exit status
(0 done, 1 the run failed or ended degraded, 2 bad usage or config)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from aimon.config import Config, load_config
from aimon.errors import ConfigError

# Wide enough for the figures table when piped (CI logs, `| less`); a terminal keeps its width.
console = Console(width=None if sys.stdout.isatty() else 132)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 132)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="YAML config (default: $AIMON_CONFIG, then configs/monitoring.yaml)")
]


def fail(what: str, todo: str | None = None, code: int = 1) -> NoReturn:
    err_console.print(f"[red]{what}[/red]" + (f": {todo}" if todo else ""))
    raise typer.Exit(code)


def load(path: Path | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as err:
        fail("config error", str(err), 2)


def run_window(
    cfg: Config, granularity: str, window_start: str | None, notify: bool | None = None, *, allow_partial: bool = False
) -> Any:
    from aimon.flows.monitor import monitor_window  # noqa: PLC0415  lazy: Prefect costs ~2 s to import

    # The flow loads the file itself: deployments pass it only the path.
    return monitor_window(
        granularity=granularity,
        window_start=window_start,
        config_path=cfg.source,
        notify=notify,
        allow_partial=allow_partial,
    )
