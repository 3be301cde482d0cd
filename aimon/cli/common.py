"""What every `aimon` command shares: the consoles, the --config option, loading the
config, starting Prefect, and failing with one `run failed: what failed: what to do`
line and the documented exit status (0 done, 1 the run failed or ended degraded, 2 bad
usage or config)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from aimon.config import Config, load_config
from aimon.env import debug_enabled, ensure_prefect_home, quiet_prefect_console
from aimon.errors import ConfigError

# Wide enough for the figures table when piped (CI logs, `| less`); a terminal keeps its width.
console = Console(width=None if sys.stdout.isatty() else 132)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 132)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="YAML config (default: $AIMON_CONFIG, then configs/monitoring.yaml)")
]


def fail(what: str, todo: str | None = None, code: int = 1) -> NoReturn:
    """Print the one `run failed: <what>: <todo>` line on stderr and exit with `code`.
    Plain text (an error's `[SQL: ...]` is not markup), never wrapped (one line, piped
    or not)."""
    text = f": {what}" + (f": {todo}" if todo else "")
    line = Text.assemble(("run failed", "red"), re.sub(r"\s*\n\s*", " ", text.strip()))
    err_console.print(line, soft_wrap=True, highlight=False)
    raise typer.Exit(code)


# `scheme://user:secret@host` and `password=secret` in a message from a driver or library
_SECRETS = (
    (re.compile(r"(://[^/:@\s]*:)[^@\s]+@"), r"\1***@"),
    (re.compile(r"((?:password|passwd|pwd|token|secret)\s*[=:]\s*)[^\s,;&'\"]+", re.I), r"\1***"),
)


def redact_text(text: str) -> str:
    for pattern, repl in _SECRETS:
        text = pattern.sub(repl, text)
    return text


def describe_error(err: BaseException) -> str:
    """`Type: first line of the message`, secrets masked: what an unexpected error (a
    driver's OperationalError, an OSError) says on the one `run failed:` line. The rest
    (a SQLAlchemy error's SQL and parameters) is for --debug."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return redact_text(f"{type(err).__name__}: {lines[0] if lines else repr(err)}")


def start_prefect() -> None:
    """Before a command's first Prefect import: create its home (the ephemeral server's
    database lives there; without it the server never starts), import Prefect, and keep
    tracebacks of failed runs off the terminal unless --debug (they stay in the
    flow-run log and state)."""
    ensure_prefect_home()
    # lazy: ~2 s, and usage and config errors are reported before it. prefect.main is what
    # `from prefect import flow` loads; importing it sets up Prefect's logging handlers.
    import prefect.main  # noqa: F401, PLC0415

    quiet_prefect_console(debug=debug_enabled())


def load(path: Path | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as err:
        fail("config error", str(err), 2)


def run_window(
    cfg: Config, granularity: str, window_start: str | None, notify: bool | None = None, *, allow_partial: bool = False
) -> Any:
    start_prefect()
    from aimon.flows.monitor import monitor_window  # noqa: PLC0415  lazy: Prefect costs ~2 s to import

    # The flow loads the file itself: deployments pass it only the path.
    return monitor_window(
        granularity=granularity,
        window_start=window_start,
        config_path=cfg.source,
        notify=notify,
        allow_partial=allow_partial,
    )
