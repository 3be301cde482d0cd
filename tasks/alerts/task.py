"""The Prefect side of alerting: the `alert` task and the flow's helpers.

Kept apart from pipeline.py so that only the flow pays for importing Prefect; the
CLI, tests and bench call `alert_window` directly.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from prefect import task
from prefect.cache_policies import NO_CACHE

from aimon.config import Config
from aimon.store.metrics import Store
from aimon.tasks.alerts.pipeline import AlertReport, alert_window
from aimon.tasks.orchestration.run import RunHandle, RunSummary
from aimon.windows import Window

log = logging.getLogger("aimon.alerts")

# Metrics a failed run still writes; the only ones judged when a run fails.
RUN_META_METRICS = frozenset({"monitoring_run_success", "monitoring_run_duration_seconds"})


@task(name="alert", cache_policy=NO_CACHE)
def alert_task(
    cfg: Config,
    store: Store,
    window: Window,
    run_id: str,
    send: bool,
    only_metrics: frozenset[str] | None = None,
    *,
    provisional: bool = False,
) -> AlertReport:
    return alert_window(cfg, store, window, run_id, send=send, only_metrics=only_metrics, provisional=provisional)


def with_alerts(summary: RunSummary, report: AlertReport) -> RunSummary:
    """The run summary with what alerting did appended to its notes."""
    return replace(summary, notes=(*summary.notes, *report.lines()))


def alert_failed_run(cfg: Config, store: Store, run: RunHandle) -> None:
    """After a failed run: judge only the run-meta rules (monitoring_run_success == 0),
    so a run that dies can still page. Never raises: the run's own error is the one
    that must surface; an alerting failure here is logged."""
    try:
        alert_task.with_options(name="alert-failed-run")(
            cfg, store, run.window, run.run_id, run.notify, RUN_META_METRICS, provisional=run.provisional
        )
    except Exception as err:
        log.error("alerting on the failed run %s failed too: %s: %s", run.run_id, type(err).__name__, err)
