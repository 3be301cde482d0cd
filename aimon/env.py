"""Prefect runs in ephemeral mode, quietly and offline, with its home under AIMON_HOME.

`configure_prefect` must run before `prefect` is first imported: Prefect reads its
settings then, and without PREFECT_HOME even the import creates ~/.prefect. Existing
settings win, so a user pointing PREFECT_API_URL at their own server keeps it.

AIMON_HOME (default ./.aimon) holds aimon's local state: the Prefect home (the ephemeral
server's database), drift reports. It is created on first use, not on `aimon --help`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

DEBUG_ENV = "AIMON_DEBUG"  # `aimon --debug` sets it; `AIMON_DEBUG=1` does the same


def aimon_home() -> Path:
    return Path(os.environ.get("AIMON_HOME", ".aimon")).expanduser().resolve()


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes")


def configure_prefect(log_level: str = "WARNING") -> None:
    home = aimon_home()
    defaults = {
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_CLI_PROMPT": "false",
        # A loaded 2-core machine has taken over 60 s to start the ephemeral server.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PREFECT_LOGGING_LEVEL": log_level,
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)


def ensure_prefect_home() -> Path:
    """Create the Prefect home and its parents. The ephemeral server puts its SQLite
    database there and, when the folder is missing, fails to start: the client then
    waits out the whole startup timeout and reports a connection timeout."""
    home = Path(os.environ.get("PREFECT_HOME") or aimon_home() / "prefect").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


class NoRunFailureTracebacks(logging.Filter):
    """On the terminal of a CLI run, a failed flow or task run is reported once, by the
    CLI's `run failed:` line. This drops Prefect's own report of it (ERROR records of
    the flow-run and task-run loggers, which carry the whole traceback) and strips the
    traceback from any other record. The records still reach Prefect's API handler (it
    sits on the run loggers, ahead of the root's console handler), so the full trace
    stays in the flow run's log and state."""

    RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "prefect.engine")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and record.name.startswith(self.RUN_LOGGERS):
            return False
        if record.exc_info or record.exc_text or record.stack_info:
            # The API handler formatted its copy already: this only changes what the
            # terminal shows (and any handler after this one).
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def quiet_prefect_console(debug: bool = False) -> None:
    """Attach `NoRunFailureTracebacks` to Prefect's console handlers (after Prefect has
    set up its logging, i.e. after `import prefect`); with `debug`, change nothing."""
    if debug:
        return
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in ("prefect", "uvicorn", "fastapi"))]
    for logger in loggers:
        for handler in logger.handlers:
            is_console = type(handler).__name__ == "PrefectConsoleHandler"
            if is_console and not any(isinstance(f, NoRunFailureTracebacks) for f in handler.filters):
                handler.addFilter(NoRunFailureTracebacks())
