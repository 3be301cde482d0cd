"""Every exception aimon raises on purpose, in one tree. Each says what failed and
what to do: `str(err)` is a complete, user-facing sentence, and `exit_code` is the CLI's
exit status for it.

AimonError                  base class (exit status 1)
├── ConfigError             the YAML file, a key, a value (exit status 2)
├── ContractError           the warehouse does not hold what the data contract needs: a
│   │                       missing file, table or column (exit status 2)
│   └── ColumnTypeError     a mapped column's type is not the contract's
├── StoreError              the metrics store cannot be read or written
│   └── FileLocked          another process held an embedded DuckDB file's lock past
│                           store.lock_timeout_seconds; `path`, `pid` name it
├── NotFound                the Python API (aimon.api) was asked for a metric, label,
│                           experiment or window the store or config has nothing for;
│                           names it and lists the valid ones (also a LookupError)
├── WindowOpen              the window has not ended (or begun) yet: refused (exit status 2)
├── RunSkipped              the run did not start, and that is not a failure (exit status 0)
│   ├── WindowClaimed       another run holds a live claim on the window
│   └── WindowDone          the redo mode says the window needs no run
├── BackfillFailed          a backfill flow could not run its windows
├── PushError               the Pushgateway did not take a push (after its retries)
├── CaptureError            a log call with bad input (aimon.capture, strict mode), or a
│                           JSONL/OTLP file that cannot be read at all (also a ValueError)
└── SendError               a notification channel did not take a message; `transient`
                            says whether a later run should retry it
"""

from __future__ import annotations


class AimonError(Exception):
    """Base class: `str(err)` is a complete, user-facing sentence."""

    exit_code = 1


class ConfigError(AimonError):
    exit_code = 2


class ContractError(AimonError):
    """A missing table or required column: the run cannot start until the config or the
    warehouse is fixed, as with a config error."""

    exit_code = 2


class ColumnTypeError(ContractError):
    """A mapped column has a type the contract cannot read (text latencies, text
    timestamps with offsets): fix the mapping or cast it in a view."""

    exit_code = 2


class StoreError(AimonError):
    pass


class FileLocked(StoreError):
    """Another process held an embedded DuckDB file's lock for longer than the wait."""

    def __init__(self, message: str, *, path: str = "", pid: int | None = None, timeout: float = 0.0):
        super().__init__(message)
        self.path = path
        self.pid = pid
        self.timeout = timeout


class NotFound(AimonError, LookupError):
    """An unknown metric, label key, experiment or window asked of the Python API:
    the message names it and lists what there is."""

    exit_code = 2


class WindowOpen(AimonError):
    """The window has not ended (windows.timezone): it is refused, nothing is stored or
    recorded, unless asked to run it as a provisional window (--allow-partial)."""

    exit_code = 2


class RunSkipped(AimonError):
    """The run did not start; `str(err)` says why. Not a failure (exit status 0)."""

    exit_code = 0
    reason = "skipped"


class WindowClaimed(RunSkipped):
    """Another run holds a live claim on the window."""

    reason = "claimed"


class WindowDone(RunSkipped):
    """The redo mode says the window needs no run (it already finished)."""

    reason = "done"


class BackfillFailed(AimonError):
    pass


class PushError(AimonError):
    """The Pushgateway did not take the push (after the retries, where they apply)."""


class CaptureError(AimonError, ValueError):
    """A logged interaction that breaks the data contract (aimon.capture: raised in
    strict mode, counted and dropped otherwise), or an ingest file that cannot be read."""

    exit_code = 2


class SendError(AimonError):
    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.transient = transient
