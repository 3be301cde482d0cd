"""monitor_window: one window, end to end. The body is the run's outline.

The flow hands its analyzer table to the orchestration: `monitor_window` runs
aimon.tasks.registry.ANALYZERS, and `monitor_flow(table)` builds the same flow over
another table (a test's failing analyzer, a benchmark's subset) without patching
anything shared."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

from prefect import Flow, flow
from prefect.runtime import flow_run

from aimon.config import Config, load_config
from aimon.errors import RunSkipped
from aimon.store.metrics import Store
from aimon.tasks.alerts.task import alert_failed_run, alert_task, with_alerts
from aimon.tasks.contract import check_contract_task
from aimon.tasks.orchestration.artifact import run_artifact_task
from aimon.tasks.orchestration.context import Analyzer
from aimon.tasks.orchestration.fanout import run_analyzers
from aimon.tasks.orchestration.retries import task_options
from aimon.tasks.orchestration.run import (
    RunSummary,
    begin_run,
    open_window_task,
    publish_task,
    record_failure,
    resolve_window,
    skipped_summary,
)
from aimon.tasks.orchestration.schedule import catchup_windows, scheduled_time
from aimon.tasks.prometheus import push_run_failure, push_task
from aimon.tasks.registry import ANALYZERS
from aimon.tasks.report import report_task
from aimon.tasks.tracing import RunTracer
from aimon.windows import UTC, Window, check_ended


def monitor_flow(analyzers: Mapping[str, Analyzer] = ANALYZERS) -> Flow:
    """The monitor-window flow over `analyzers` (name -> analyzer function)."""

    @flow(name="monitor-window", log_prints=True)
    def monitor_window(
        granularity: str = "daily",
        window_start: str | None = None,
        config_path: str | None = None,
        notify: bool | None = None,
        redo: str = "all",
        scheduled: bool = False,
        allow_partial: bool = False,
    ) -> RunSummary:
        """Monitor one window (the last complete one unless `window_start` is given).

        `notify`: None sends notifications for the live window only; False records
        alerts without sending; True sends even for a historical window.
        `redo`: all (default) reruns the window; missing skips it if a run of it finished;
        failed skips it if its latest finished run succeeded.
        `scheduled` (the schedules' deployments): take the last complete window as of the
        run's scheduled time, skip it if it already ran, and first run the missed windows
        within orchestration.catchup_windows. An explicit `window_start` wins over
        `scheduled` (an ad-hoc run of a deployment): that window runs, in the `redo` mode
        (default all), with no catch-up. Every run claims its window first: a second
        concurrent run of the same window is skipped (status "skipped").
        A window that has not ended is refused (WindowOpen) before anything is stored or
        recorded; `allow_partial` runs it as a provisional window instead: figures
        stored and marked (monitoring_window_provisional), no finished run recorded,
        nothing pushed, no alert resolved."""
        cfg = load_config(config_path)
        by_schedule = scheduled and window_start is None
        window = resolve_window(cfg, granularity, window_start, scheduled_time() if by_schedule else None)
        provisional = check_ended(window, allow_partial=allow_partial)
        store = Store(cfg)
        if by_schedule:
            _catch_up(monitor_window, cfg, store, window, config_path)
        try:
            run = begin_run(
                store,
                window,
                flow_run.get_id(),
                notify=notify,
                claim_ttl_seconds=cfg.orchestration.claim_expires_after_seconds,
                redo="missing" if by_schedule else redo,
                provisional=provisional,
            )
        except RunSkipped as skipped:
            print(skipped)
            return skipped_summary(window, skipped, store)
        opts = task_options(cfg)  # a timeout on every task; retries on transient warehouse errors only
        spans = RunTracer(cfg, window, run.run_id)  # OpenTelemetry spans of the steps (tracing.otlp_endpoint)
        try:
            with spans.step("read"):
                ctx = open_window_task.with_options(**opts)(cfg, window, store)
            with spans.step("contract"):
                contract = check_contract_task.with_options(**opts)(
                    ctx.warehouse, ctx.interactions, window, cfg.contract.check_null_timestamps
                )
            fanned = time.time()
            outcomes = run_analyzers(cfg, ctx, opts, analyzers)  # threads, or Dask (orchestration.task_runner)
            spans.analyzers(outcomes, fanned, time.time())
            with spans.step("publish"):
                summary = publish_task.with_options(**opts)(store, run, contract, outcomes)
            with spans.step("push"):
                summary = push_task(cfg, store, summary)  # live windows only; a failed push degrades the run
            with spans.step("alert"):
                summary = with_alerts(
                    summary, alert_task(cfg, store, window, run.run_id, run.notify, provisional=run.provisional)
                )
        except BaseException as err:
            record_failure(store, run, err)
            push_run_failure(cfg, run, err)
            if isinstance(err, Exception):
                alert_failed_run(cfg, store, run)
            spans.end("failed", err)
            raise
        if cfg.report.after_run:  # the HTML report's pages of this window; never fails the run
            note = report_task(cfg, window)
            summary = replace(summary, notes=(*summary.notes, note)) if note else summary
        run_artifact_task(summary, cfg)
        spans.end(summary.status)
        return summary

    return monitor_window


monitor_window = monitor_flow()


def _catch_up(monitor: Flow, cfg: Config, store: Store, window: Window, config_path: str | None) -> None:
    """Run the missed windows before `window` (oldest first) as subflows; each is
    claimed and skipped if another run got to it first. A failed one does not stop
    the scheduled window."""
    for missed in catchup_windows(store, window, cfg.orchestration.catchup_windows):
        print(f"catching up {missed}")
        monitor(
            granularity=missed.granularity,
            window_start=missed.start.replace(tzinfo=UTC).isoformat(),
            config_path=config_path,
            redo="missing",
            return_state=True,
        )
