"""A run's lifecycle: open the window, run one analyzer, publish, record a failure.

Plain functions plus the thin @task wrappers the flow calls.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from aimon.config import Config
from aimon.errors import RunSkipped
from aimon.records import AnalyzerResult, MetricRecord
from aimon.store.metrics import Store
from aimon.tasks.contract import ContractReport
from aimon.tasks.orchestration.context import AnalysisContext, Analyzer
from aimon.warehouse import Warehouse
from aimon.windows import Window, is_live, window_at


@dataclass(frozen=True)
class RunHandle:
    run_id: str
    window: Window
    started: float  # time.monotonic() at start
    live: bool = True  # the last complete window: push figures, send notifications
    notify: bool = True  # send notifications; False records alerts without sending
    # An open window run on request (allow_partial): figures stored and marked, never a
    # finished run, never pushed, never resolving an alert.
    provisional: bool = False


@dataclass(frozen=True)
class AnalyzerOutcome:
    name: str
    result: AnalyzerResult | None
    error: str | None = None
    seconds: float = 0.0
    started: float = 0.0  # epoch seconds (0: unknown, the analyzer failed before reporting)


@dataclass(frozen=True)
class RunSummary:
    """What a run found, small enough to return from a flow and print."""

    run_id: str
    window: Window
    status: str  # success | degraded | failed
    duration_seconds: float
    contract: ContractReport | None
    outcomes: tuple[AnalyzerOutcome, ...] = ()
    records: tuple[MetricRecord, ...] = ()
    stored_in: str = ""
    error: str | None = None
    notes: tuple[str, ...] = field(default=())
    live: bool = True
    provisional: bool = False  # an open window's figures so far (see RunHandle)

    def value(self, metric: str, /, **labels: str) -> float | None:
        want = tuple(sorted(labels.items()))
        for r in self.records:
            if r.metric == metric and r.labels == want:
                return r.value
        return None


def resolve_window(
    cfg: Config, granularity: str, window_start: str | None = None, now: dt.datetime | None = None
) -> Window:
    """The window to run: the one holding `window_start` (ISO date or timestamp; a
    naive value is local time in windows.timezone), else the last complete one."""
    return window_at(window_start, granularity, cfg.windows.timezone, now)


def begin_run(
    store: Store,
    window: Window,
    flow_run_id: str | None = None,
    *,
    notify: bool | None = None,
    claim_ttl_seconds: float | None = None,
    redo: str = "all",
    provisional: bool = False,
) -> RunHandle:
    """Record the run. `notify=None` means: send notifications for a live window only;
    alerts of historical windows (backfills, old reruns) are recorded, not sent. A
    provisional run (an open window) is not live: nothing pushed, alerts not sent.

    With `claim_ttl_seconds`, claim the window first (aimon.store.runs): raises
    `RunSkipped` (`WindowClaimed`: another run holds it; `WindowDone`: `redo` says the
    window needs no run) instead of starting a second run of one window."""
    store.ensure(window)  # a DuckDB file held by a run of this window: WindowClaimed too
    run_id = uuid.uuid4().hex[:16]
    store.start_run(run_id, window, flow_run_id, claim_ttl_seconds=claim_ttl_seconds, redo=redo)
    live = is_live(window) and not provisional
    return RunHandle(
        run_id,
        window,
        time.monotonic(),
        live=live,
        notify=live if notify is None else notify,
        provisional=provisional,
    )


def open_window(cfg: Config, window: Window, store: Store) -> AnalysisContext:
    """Check the table, its columns and their types against the contract; hand out the
    handles. The warehouse is read-only unless it is the store's own file."""
    warehouse = Warehouse(cfg.warehouse, cfg.store)
    return AnalysisContext(cfg, window, warehouse, warehouse.describe(), store)


def run_analyzer(analyzer: Analyzer, ctx: AnalysisContext) -> AnalyzerResult:
    wall, started = time.time(), time.monotonic()
    result = analyzer(ctx)
    return dataclasses.replace(result, seconds=time.monotonic() - started, started=wall)


def run_meta(status: str, duration: float, *, provisional: bool = False) -> list[MetricRecord]:
    recs = [
        MetricRecord.of("monitoring_run_success", 1.0 if status == "success" else 0.0),
        MetricRecord.of("monitoring_run_duration_seconds", duration),
    ]
    if provisional:  # the window's figures so far; the run of the ended window replaces them
        recs.append(MetricRecord.of("monitoring_window_provisional", 1.0))
    elif status == "success":
        recs.append(MetricRecord.of("monitoring_last_success_timestamp_seconds", time.time()))
    return recs


def run_status(run: RunHandle, status: str) -> str:
    """The status the runs table records: a provisional run is never a finished one,
    so `redo=missing`, a schedule and a catch-up still run the window once it ends."""
    return "provisional" if run.provisional else status


def publish(store: Store, run: RunHandle, contract: ContractReport, outcomes: list[AnalyzerOutcome]) -> RunSummary:
    """Store the window's figures atomically (replacing a previous run's) and close the run."""
    failed = [o for o in outcomes if o.error]
    status = "degraded" if failed else "success"
    records: list[MetricRecord] = list(contract.records())
    for o in outcomes:
        if o.result is not None:
            records.extend(o.result.records)
    duration = time.monotonic() - run.started
    records.extend(run_meta(status, duration, provisional=run.provisional))
    store.replace_window(run.window, records, run.run_id)
    notes = list(contract.notes)
    for o in outcomes:
        if o.result is not None:
            notes.extend(o.result.notes)
    store.finish_run(
        run.run_id,
        run_status(run, status),
        duration_seconds=duration,
        rows_accepted=contract.accepted,
        rows_rejected=contract.rejected_total,
        error="; ".join(f"{o.name}: {o.error}" for o in failed) or None,
        details={o.name: {"seconds": round(o.seconds, 3), "error": o.error} for o in outcomes},
    )
    return RunSummary(
        run.run_id,
        run.window,
        status,
        duration,
        contract,
        tuple(outcomes),
        tuple(records),
        store.where,
        None,
        tuple(notes),
        run.live,
        run.provisional,
    )


def record_failure(store: Store, run: RunHandle, err: BaseException) -> None:
    """A failed run keeps the window's previous figures; only run-meta figures change."""
    duration = time.monotonic() - run.started
    store.upsert(run.window, run_meta("failed", duration, provisional=run.provisional), run.run_id)
    store.finish_run(
        run.run_id, run_status(run, "failed"), duration_seconds=duration, error=f"{type(err).__name__}: {err}"
    )


def describe_error(err: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(err), err)).strip()


# -- thin task wrappers ------------------------------------------------------------


@task(name="analyze", cache_policy=NO_CACHE)
def analyze_task(analyzer: Analyzer, ctx: AnalysisContext) -> AnalyzerResult:
    return run_analyzer(analyzer, ctx)


@task(name="publish", cache_policy=NO_CACHE)
def publish_task(store: Store, run: RunHandle, contract: ContractReport, outcomes: list[AnalyzerOutcome]) -> RunSummary:
    return publish(store, run, contract, outcomes)


@task(name="open-window", cache_policy=NO_CACHE)
def open_window_task(cfg: Config, window: Window, store: Store) -> AnalysisContext:
    return open_window(cfg, window, store)


def outcome_of(name: str, future: Any) -> AnalyzerOutcome:
    """An analyzer task's result, or its error: one failing analyzer degrades the run."""
    future.wait()
    if future.state.is_completed():
        result = future.result()
        return AnalyzerOutcome(name, result, None, result.seconds, result.started)
    err = future.result(raise_on_failure=False)
    return AnalyzerOutcome(name, None, describe_error(err) if isinstance(err, BaseException) else str(err))


def skipped_summary(window: Window, err: RunSkipped, store: Store) -> RunSummary:
    return RunSummary("", window, "skipped", 0.0, None, stored_in=store.where, notes=(str(err),), live=False)
