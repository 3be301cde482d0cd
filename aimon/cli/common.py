"""What every `aimon` command shares: the consoles, the --config option, loading the
config, starting Prefect, and failing with one `run failed: what failed: what to do`
line and the documented exit status (0 done, 1 the run failed or ended degraded, 2 bad
usage or config)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import getpass
import json
import math
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

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


class Format(enum.StrEnum):
    text = "text"
    json = "json"


FormatOpt = Annotated[
    Format,
    typer.Option(
        "--format",
        help="text for people; json: one JSON document on stdout, for scripts (keys: docs/reference/json.md)",
    ),
]


class Failed(typer.Exit):
    """What `fail` raises: the exit status, and the failure line's text (for --format json)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code)
        self.message = message


def fail(what: str, todo: str | None = None, code: int = 1) -> NoReturn:
    """Print the one `run failed: <what>: <todo>` line on stderr and exit with `code`.
    Plain text (an error's `[SQL: ...]` is not markup), never wrapped (one line, piped
    or not)."""
    text = re.sub(r"\s*\n\s*", " ", (f"{what}" + (f": {todo}" if todo else "")).strip())
    err_console.print(Text.assemble(("run failed", "red"), f": {text}"), soft_wrap=True, highlight=False)
    raise Failed(code, text)


def jsonable(value: Any) -> Any:
    """`value` as plain JSON types: datetimes as ISO 8601 UTC strings (aimon's naive
    datetimes are UTC), NaN and infinities as null, tuples as lists, dataclasses as dicts."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, dt.datetime):
        utc = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        return utc.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if hasattr(value, "item"):  # a numpy scalar
        return jsonable(value.item())
    raise TypeError(f"no JSON form for {type(value).__name__}")


def print_json(doc: Mapping[str, Any]) -> None:
    """The one JSON document of a --format json command: plain stdout, no markup, no wrapping."""
    sys.stdout.write(json.dumps(jsonable(doc), indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


class Output:
    """Where a command's result goes: rich text on the console, or (--format json) one
    JSON document on stdout, printed with `emit`."""

    def __init__(self, fmt: Format) -> None:
        self.json = fmt is Format.json
        self.emitted = False

    def emit(self, doc: Mapping[str, Any]) -> None:
        print_json(doc)
        self.emitted = True


@contextlib.contextmanager
def output(fmt: Format) -> Iterator[Output]:
    """A command body's output. With --format json, a failure before its document still
    leaves one on stdout, `{"status": "failed", "error": "..."}`; the `run failed:` line
    goes to stderr as usual and the exit status is unchanged."""
    out = Output(fmt)
    try:
        yield out
    except Failed as err:
        if out.json and not out.emitted and err.exit_code:
            out.emit({"status": "failed", "error": err.message})
        raise
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as err:  # the app turns it into its `run failed:` line (aimon.cli.app)
        if out.json and not out.emitted:
            out.emit({"status": "failed", "error": describe_error(err)})
        raise


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


def to_utc(ts: dt.datetime, timezone: str) -> dt.datetime:
    """A timestamp given on the command line, as naive UTC: without an offset it is local
    time in `timezone` (windows.timezone)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=ZoneInfo(timezone))
    return ts.astimezone(dt.UTC).replace(tzinfo=None)


def login() -> str:
    """Who runs the command (the default author of a silence or a deployment)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


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
