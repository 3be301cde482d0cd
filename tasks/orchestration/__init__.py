"""How a run is operated, as opposed to what it computes: which errors are retried,
the options every task of a run gets (timeout, retries with backoff), the run's
markdown artifact, the summary of a run that was skipped, and catch-up planning.

Plain functions plus thin @task wrappers, like the rest of tasks/.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from aimon.config import Config
from aimon.errors import RunSkipped
from aimon.records import ALL
from aimon.store.metrics import Store
from aimon.windows import Window, window_containing

if TYPE_CHECKING:
    from aimon.tasks.orchestration.run import RunSummary

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
    returns). True, and documented in the README ("Deploying schedules"); as a
    warning on every run it is noise in the CLI's output, so it is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Timeout of %s seconds configured for this task, but the task is running")


def quiet_thread_timeout_notice() -> None:
    logger = logging.getLogger("prefect.task_runs")
    if not any(isinstance(f, _ThreadTimeoutNotice) for f in logger.filters):
        logger.addFilter(_ThreadTimeoutNotice())


def scheduled_time() -> dt.datetime:
    """When this flow run was scheduled for (now outside a deployment): a late run
    after an outage takes the window of its schedule slot, not the current one."""
    from prefect.runtime import flow_run

    ts = flow_run.get_scheduled_start_time()
    return dt.datetime.fromtimestamp(ts.timestamp(), dt.UTC)


def catchup_windows(store: Store, window: Window, n: int, now: dt.datetime | None = None) -> list[Window]:
    """The up-to-`n` windows just before `window` that never finished a run and are
    not being run now, oldest first."""
    if n <= 0:
        return []
    before: list[Window] = []
    w = window
    for _ in range(n):
        w = window_containing(w.start - dt.timedelta(microseconds=1), w.granularity, w.timezone)
        before.append(w)
    states = store.window_states(sorted(before, key=lambda x: x.start), now)
    return [s.window for s in states if s.latest_status is None and s.claimed_by is None]


def skipped_summary(window: Window, err: RunSkipped, store: Store) -> RunSummary:
    from aimon.tasks.orchestration.run import RunSummary

    return RunSummary("", window, "skipped", 0.0, None, stored_in=store.where, notes=(str(err),), live=False)


# -- the run's markdown artifact -----------------------------------------------------


def _fmt(v: float | None, spec: str = ",.4g") -> str:
    return "-" if v is None else format(v, spec)


def run_markdown(summary: RunSummary) -> str:
    """The run at a glance, for the Prefect UI. Sections come from the RunSummary;
    other analyzers' notes (drift, experiments, alerts) appear under Notes, and a new
    section is one more block here."""
    s = summary
    v = s.value
    lines = [
        f"# {s.window.granularity} window {s.window.label}",
        "",
        f"`[{s.window.start:%Y-%m-%d %H:%M}, {s.window.end:%Y-%m-%d %H:%M})` UTC · run `{s.run_id}` · "
        f"**{s.status}** in {s.duration_seconds:.1f}s · {'live' if s.live else 'historical'}",
        "",
    ]
    if s.error:
        lines += [f"**Error:** {s.error}", ""]
    if s.contract is not None:
        c = s.contract
        lines += [f"**Rows:** {c.accepted:,} accepted, {c.rejected_total:,} rejected", ""]
        rejected = {k: n for k, n in c.rejected.items() if n}
        if rejected:
            lines += ["| rejected because | rows |", "|---|---:|"]
            lines += [f"| {k} | {n:,} |" for k, n in rejected.items()]
            lines.append("")
    lines += ["## Key figures", "", "| figure | value |", "|---|---:|"]
    everything = {"model": ALL, "endpoint": ALL}
    rate = v("llm_error_rate", **everything)
    for label, value in (
        ("requests", _fmt(v("llm_requests", **everything), ",.0f")),
        ("error rate", "-" if rate is None else f"{rate:.2%}"),
        ("latency p50 s", _fmt(v("llm_latency_seconds", quantile="0.5", **everything), ".3f")),
        ("latency p95 s", _fmt(v("llm_latency_seconds", quantile="0.95", **everything), ".3f")),
        ("latency p99 s", _fmt(v("llm_latency_seconds", quantile="0.99", **everything), ".3f")),
        ("tokens in", _fmt(v("llm_tokens", type="input", **everything), ",.0f")),
        ("tokens out", _fmt(v("llm_tokens", type="output", **everything), ",.0f")),
        ("cost USD", _fmt(v("llm_cost_usd", **everything), ",.2f")),
    ):
        lines.append(f"| {label} | {value} |")
    lines.append("")
    if s.outcomes:
        lines += ["## Analyzers", "", "| analyzer | status | seconds | figures |", "|---|---|---:|---:|"]
        for o in s.outcomes:
            n = len(o.result.records) if o.result is not None else 0
            status = f"error: {o.error}" if o.error else "ok"
            lines.append(f"| {o.name} | {status.replace('|', '/')} | {o.seconds:.2f} | {n} |")
        lines.append("")
    if s.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in s.notes] + [""]
    if s.stored_in:
        lines.append(f"Figures stored in {s.stored_in}.")
    return "\n".join(lines)


def artifact_key(window: Window) -> str:
    # Keys: lowercase letters, digits and dashes; one key per granularity keeps the
    # latest window's artifact easy to find, with every run's version in its history.
    return f"aimon-{window.granularity}-run"


@task(name="run-artifact", cache_policy=NO_CACHE, timeout_seconds=60)
def run_artifact_task(summary: RunSummary) -> None:
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        markdown=run_markdown(summary),
        key=artifact_key(summary.window),
        description=f"aimon {summary.window} ({summary.status})",
    )
