"""Which errors are retried, and the options every task of a run gets: a timeout, and
retries with backoff and jitter on transient warehouse errors only."""

from __future__ import annotations

import logging
import socket
from typing import Any

from aimon.config import Config
from aimon.errors import RunSkipped

# SQLSTATEs worth retrying: the same statement can succeed a moment later.
TRANSIENT_SQLSTATES = {
    "40001": "serialization failure",
    "40P01": "deadlock detected",
    "57014": "statement timeout / query canceled",
    "57P01": "admin shutdown",
    "57P02": "crash shutdown",
    "57P03": "cannot connect now (server starting up)",
    "08000": "connection exception",
    "08001": "cannot establish connection",
    "08003": "connection does not exist",
    "08004": "connection rejected",
    "08006": "connection failure",
    "53300": "too many connections",
}
# Driver messages for the same conditions where no SQLSTATE is attached (psycopg's
# "connection refused" is an OperationalError without one; SQLite and DuckDB have none).
TRANSIENT_MESSAGES = (
    "connection refused",
    "could not connect",
    "connection timed out",
    "timeout expired",
    "server closed the connection",
    "connection reset",
    "database is locked",  # SQLite: another writer held the lock past busy_timeout
    "deadlock",
    "could not serialize",
    "transaction conflict",  # DuckDB optimistic concurrency
    "conflict on tuple",
)


def _chain(err: BaseException) -> list[BaseException]:
    """The exception and its causes (aimon wraps driver errors in AimonError with
    `from None`, which hides __cause__ but keeps __context__)."""
    seen: list[BaseException] = []
    cur: BaseException | None = err
    while cur is not None and cur not in seen and len(seen) < 10:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def transient_reason(err: BaseException) -> str | None:
    """Why `err` is worth retrying, or None: only transient warehouse errors are
    (connection refused or lost, timeouts, deadlocks, serialization failures).
    A missing table, a bad column or a bug fails at once, with its message."""
    for e in _chain(err):
        if isinstance(e, RunSkipped):
            return None
        sqlstate = getattr(e, "sqlstate", None) or getattr(getattr(e, "orig", None), "sqlstate", None)
        if sqlstate in TRANSIENT_SQLSTATES:
            return TRANSIENT_SQLSTATES[sqlstate]
        if isinstance(e, ConnectionError | TimeoutError | socket.timeout):
            return type(e).__name__
        msg = str(e).lower()
        for m in TRANSIENT_MESSAGES:
            if m in msg:
                return m
    return None


def retry_if_transient(_task: Any, _task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: retry a failed task only on a transient error."""
    err = state.result(raise_on_failure=False)
    return isinstance(err, BaseException) and transient_reason(err) is not None


def backoff(cfg: Config) -> list[float]:
    o = cfg.orchestration
    return [o.retry_delay_seconds * 2**i for i in range(o.retries)]


def task_options(cfg: Config) -> dict[str, Any]:
    """Options for every task of a run: `task.with_options(**task_options(cfg))`."""
    o = cfg.orchestration
    quiet_thread_timeout_notice()
    return {
        "timeout_seconds": o.task_timeout_seconds,
        "retries": o.retries,
        "retry_delay_seconds": backoff(cfg),
        "retry_jitter_factor": 0.2,  # a pile-up of runs does not retry in lockstep
        "retry_condition_fn": retry_if_transient,
    }


class _ThreadTimeoutNotice(logging.Filter):
    """Prefect logs, for every task with a timeout that runs in a worker thread, that
    the timeout cannot interrupt a blocking call (it takes effect when the call
    returns). True, and documented in docs/deploying.md; as a
    warning on every run it is noise in the CLI's output, so it is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Timeout of %s seconds configured for this task, but the task is running")


def quiet_thread_timeout_notice() -> None:
    logger = logging.getLogger("prefect.task_runs")
    if not any(isinstance(f, _ThreadTimeoutNotice) for f in logger.filters):
        logger.addFilter(_ThreadTimeoutNotice())
