"""backfill: monitor_window over every window of a date range, a bounded number at a time.

Each window runs as a `monitor-window` subflow (its own flow run, logs, artifact and
state in the UI), called from a `backfill-window` task. The tasks go to a
`ThreadPoolTaskRunner(max_workers=concurrency)` opened inside the flow: the bound is a
parameter of the run, so it cannot be the flow decorator's runner, and a thread pool
is what a window needs (each run waits on the warehouse, not on Python).
`run_deployment` per window would also work, but needs a worker per window and a
server round trip per run, and would not run from `aimon backfill` without a server.

Windows already complete are skipped in the plan (and again under each window's claim,
so a window finished by someone else meanwhile is not run twice); `redo` asks for
failed windows (`failed`) or everything (`all`) to run again. A rerun replaces the
window's figures, so backfilling twice leaves one set.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Literal

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from aimon.config import Config, load_config
from aimon.errors import BackfillFailed, WindowOpen
from aimon.flows.monitor import monitor_window
from aimon.store.metrics import Store
from aimon.store.runs import check_redo, needs_run
from aimon.tasks.orchestration.retries import quiet_thread_timeout_notice
from aimon.windows import UTC, Window, is_open, windows_between

Order = Literal["oldest", "newest"]
OUTCOMES = ("success", "degraded", "failed", "skipped", "interrupted", "would run")
INTERRUPTED_NOTE = "not started: the backfill was interrupted (run it again to do these)"


@dataclass(frozen=True)
class WindowOutcome:
    window: Window
    outcome: str  # one of OUTCOMES
    run_id: str | None = None
    note: str | None = None  # why skipped, or the error
    seconds: float = 0.0


@dataclass(frozen=True)
class BackfillPlan:
    to_run: tuple[Window, ...]  # in run order
    skipped: tuple[WindowOutcome, ...]  # complete already (per the redo mode), or running elsewhere
    redo: str
    order: str
    concurrency: int

    @property
    def total(self) -> int:
        return len(self.to_run) + len(self.skipped)


@dataclass(frozen=True)
class BackfillReport:
    outcomes: tuple[WindowOutcome, ...] = field(default=())

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)

    @property
    def by_outcome(self) -> dict[str, list[WindowOutcome]]:
        out: dict[str, list[WindowOutcome]] = {}
        for o in sorted(self.outcomes, key=lambda o: o.window.start):
            out.setdefault(o.outcome, []).append(o)
        return {k: out[k] for k in OUTCOMES if k in out}


# The CLI's progress bar listens here (the flow body runs in the caller's thread and
# context); a deployment run has no listener and reports through its artifacts.
Listener = Callable[[BackfillPlan | WindowOutcome], None]
_listener: contextvars.ContextVar[Listener | None] = contextvars.ContextVar("aimon_backfill_listener", default=None)


@contextlib.contextmanager
def listening(fn: Listener) -> Iterator[None]:
    token = _listener.set(fn)
    try:
        yield
    finally:
        _listener.reset(token)


# Set by `aimon backfill` on Ctrl-C or SIGTERM: no window starts after it; the ones in
# progress finish (commit, or roll back on their own error) and release their claims.
SignalHandler = Callable[[int, FrameType | None], Any]
_stop: contextvars.ContextVar[tuple[threading.Event, SignalHandler | None] | None] = contextvars.ContextVar(
    "aimon_backfill_stop", default=None
)


@contextlib.contextmanager
def stoppable(event: threading.Event, on_sigterm: SignalHandler | None = None) -> Iterator[None]:
    """Windows stop starting once `event` is set. `on_sigterm` is put back as the SIGTERM
    handler inside the flow: Prefect's flow engine installs its own, which crashes the run."""
    token = _stop.set((event, on_sigterm))
    try:
        yield
    finally:
        _stop.reset(token)


def _stopped() -> bool:
    stop = _stop.get()
    return stop is not None and stop[0].is_set()


@contextlib.contextmanager
def _caller_sigterm() -> Iterator[None]:
    stop = _stop.get()
    if stop is None or stop[1] is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, stop[1])
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _emit(event: BackfillPlan | WindowOutcome) -> None:
    fn = _listener.get()
    if fn is not None:
        fn(event)


def plan_backfill(
    cfg: Config,
    start: dt.date,
    end: dt.date,
    granularity: str = "daily",
    redo: str = "missing",
    order: str | None = None,
    concurrency: int | None = None,
    now: dt.datetime | None = None,
    allow_partial: bool = False,
) -> BackfillPlan:
    """Which windows of [start, end] (local dates, inclusive) to run, in which order.

    A range reaching into a window that has not ended is refused (WindowOpen, naming
    the first such window) unless `allow_partial`: then the open window runs as a
    provisional one, and the windows that have not begun are listed as skipped."""
    if end < start:
        raise ValueError(f"backfill end {end} is before start {start}")
    mode = check_redo(redo)
    order = order or cfg.orchestration.backfill_order
    if order not in ("oldest", "newest"):
        raise ValueError(f"order {order!r}: use oldest or newest")
    conc = concurrency or cfg.orchestration.backfill_concurrency
    if conc < 1:
        raise ValueError(f"concurrency {conc}: use 1 or more")
    windows = windows_between(start, end, granularity, cfg.windows.timezone)
    current = dt.datetime.now(UTC).replace(tzinfo=None) if now is None else now
    to_run: list[Window] = []
    skipped: list[WindowOutcome] = []
    open_windows = [w for w in windows if is_open(w, current)]
    if open_windows and not allow_partial:
        first = open_windows[0]
        last_ended = first.local_start.date() - dt.timedelta(days=1)  # the last date all of whose windows ended
        raise WindowOpen(
            f"backfill {start}..{end} reaches into {first}, which has not "
            f"{'ended' if first.start <= current else 'begun'} (now is {current:%Y-%m-%d %H:%M} UTC): "
            + (f"end the range at --end {last_ended}" if last_ended >= start else "pick dates that have ended")
            + ", or pass --allow-partial (flow parameter allow_partial) to run the open window as a provisional one"
        )
    for w in open_windows:
        if w.start > current:
            skipped.append(WindowOutcome(w, "skipped", None, "has not begun"))
    windows = [w for w in windows if w.start <= current]  # the open one runs provisional
    states = Store(cfg).window_states(windows, now)
    for s in states:
        if s.claimed_by is not None:
            skipped.append(WindowOutcome(s.window, "skipped", s.claimed_by, f"being run by run {s.claimed_by}"))
        elif needs_run(s.latest_status, mode):
            to_run.append(s.window)
        else:
            skipped.append(
                WindowOutcome(s.window, "skipped", s.latest_run_id, f"latest run {s.latest_status} (redo={mode})")
            )
    to_run.sort(key=lambda w: w.start, reverse=order == "newest")
    return BackfillPlan(tuple(to_run), tuple(skipped), mode, order, conc)


def outcome_of_run(window: Window, future: Any) -> WindowOutcome:
    """The subflow's RunSummary, or its error: a failed window does not stop the others."""
    res = future.result(raise_on_failure=False)
    if isinstance(res, BaseException):
        return WindowOutcome(window, "failed", None, f"{type(res).__name__}: {res}")
    if not hasattr(res, "status"):  # a Failed state without an exception attached
        return WindowOutcome(window, "failed", None, str(res))
    note = "; ".join(res.notes) if res.status == "skipped" else (res.error or None)
    if getattr(res, "provisional", False):
        note = "; ".join(filter(None, ("provisional: the window has not ended", note)))
    return WindowOutcome(window, res.status, res.run_id or None, note, res.duration_seconds)


def report_markdown(report: BackfillReport, title: str) -> str:
    lines = [f"# {title}", "", "| outcome | windows | first | last |", "|---|---:|---|---|"]
    for outcome, items in report.by_outcome.items():
        lines.append(f"| {outcome} | {len(items)} | {items[0].window.label} | {items[-1].window.label} |")
    problems = [o for o in report.outcomes if o.outcome in ("failed", "degraded")]
    if problems:
        lines += ["", "| window | outcome | error |", "|---|---|---|"]
        lines += [f"| {o.window.label} | {o.outcome} | {(o.note or '').replace('|', '/')} |" for o in problems]
    return "\n".join(lines)


@task(name="backfill-window", cache_policy=NO_CACHE)
def backfill_window_task(
    window: Window, config_path: str | None, redo: str, notify: bool, allow_partial: bool = False
) -> Any:  # a RunSummary; Any keeps Prefect from validating the return
    return monitor_window(
        granularity=window.granularity,
        window_start=window.start.replace(tzinfo=UTC).isoformat(),
        config_path=config_path,
        notify=notify,
        redo=redo,
        allow_partial=allow_partial,
    )


@flow(name="backfill", log_prints=True)
def backfill(
    start: dt.date,
    end: dt.date,
    granularity: str = "daily",
    redo: str = "missing",
    concurrency: int | None = None,
    order: str | None = None,
    notify: bool = False,
    config_path: str | None = None,
    allow_partial: bool = False,
) -> BackfillReport:
    """Monitor every window from local date `start` to `end` (inclusive).

    `redo`: missing (default) skips windows whose run finished; failed also reruns
    failed and degraded ones; all reruns everything. At most `concurrency` windows
    run at once (default orchestration.backfill_concurrency), `order` oldest or newest
    first. Historical windows record alerts without sending them unless `notify`. A
    range reaching into a window that has not ended is refused unless `allow_partial`
    (the open window then runs as a provisional one)."""
    cfg = load_config(config_path)
    plan = plan_backfill(cfg, start, end, granularity, redo, order, concurrency, allow_partial=allow_partial)
    _emit(plan)
    print(
        f"backfill {granularity} {start}..{end}: {len(plan.to_run)} to run, {len(plan.skipped)} skipped "
        f"(redo={plan.redo}, {plan.order} first, {plan.concurrency} at a time)"
    )
    outcomes = list(plan.skipped)
    progress: Any = create_progress_artifact(
        100.0 if not plan.to_run else 0.0,
        description=f"aimon backfill {granularity} {start}..{end}: windows done",
    )
    quiet_thread_timeout_notice()
    timeout = cfg.orchestration.claim_expires_after_seconds  # a run past its claim's expiry can be taken over
    window_task = backfill_window_task.with_options(timeout_seconds=timeout)
    runner: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=plan.concurrency)
    with runner, _caller_sigterm():
        params = {"config_path": config_path, "redo": plan.redo, "notify": notify, "allow_partial": allow_partial}
        # Submitted as workers free up (not all at once), so that a stop leaves the rest unstarted.
        queue, done = list(plan.to_run), 0
        running: dict[Any, Window] = {}
        while queue or running:
            while queue and len(running) < plan.concurrency and not _stopped():
                w = queue.pop(0)
                running[runner.submit(window_task, {"window": w, **params})] = w
            if not running:
                break
            fut = next(iter(as_completed(list(running))))
            outcome = outcome_of_run(running.pop(fut), fut)
            outcomes.append(outcome)
            _emit(outcome)
            print(f"{outcome.window}: {outcome.outcome}" + (f" ({outcome.note})" if outcome.note else ""))
            done += 1
            update_progress_artifact(progress, 100.0 * done / len(plan.to_run))
        for w in queue:  # left unstarted by a stop
            outcomes.append(WindowOutcome(w, "interrupted", None, INTERRUPTED_NOTE))
            _emit(outcomes[-1])
    report = BackfillReport(tuple(outcomes))
    create_markdown_artifact(
        report_markdown(report, f"backfill {granularity} {start}..{end}"),
        key="aimon-backfill",
        description="windows by outcome",
    )
    counts = Counter(o.outcome for o in outcomes)
    if counts["failed"]:
        failed = [o for o in outcomes if o.outcome == "failed"]
        raise BackfillFailed(
            f"{counts['failed']} of {len(outcomes)} windows failed, first {failed[0].window}: {failed[0].note}; "
            "fix the cause and rerun with redo=failed"
        )
    return report
