"""monitor_window: one window, end to end. The body is the run's outline."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from aimon.config import load_config
from aimon.store import Store
from tasks.alerts import alert_failed_run, alert_task, with_alerts
from tasks.contract import check_contract_task
from tasks.prometheus import push_run_failure, push_task
from tasks.registry import ANALYZERS
from tasks.run import (
    RunSummary,
    analyze_task,
    begin_run,
    open_window_task,
    outcome_of,
    publish_task,
    record_failure,
    resolve_window,
)


@flow(name="monitor-window", log_prints=True)
def monitor_window(
    granularity: str = "daily",
    window_start: str | None = None,
    config_path: str | None = None,
    notify: bool | None = None,
) -> RunSummary:
    """Monitor one window (the last complete one unless `window_start` is given).

    `notify`: None sends notifications for the live window only; False records
    alerts without sending; True sends even for a historical window."""
    cfg = load_config(config_path)
    window = resolve_window(cfg, granularity, window_start)
    store = Store(cfg)
    run = begin_run(store, window, flow_run.get_id(), notify=notify)
    try:
        ctx = open_window_task(cfg, window, store)
        contract = check_contract_task(ctx.warehouse, ctx.interactions, window, cfg.contract.check_null_timestamps)
        futures = {name: analyze_task.with_options(name=f"analyze-{name}").submit(name, ctx) for name in ANALYZERS}
        outcomes = [outcome_of(name, f) for name, f in futures.items()]
        summary = publish_task(store, run, contract, outcomes)
        summary = push_task(cfg, store, summary)  # live windows only; a failed push degrades the run
        return with_alerts(summary, alert_task(cfg, store, window, run.run_id, run.notify))
    except BaseException as err:
        record_failure(store, run, err)
        push_run_failure(cfg, run, err)
        if isinstance(err, Exception):
            alert_failed_run(cfg, store, run)
        raise
