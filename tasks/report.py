"""`report.after_run`: after a run, rebuild its pages of the HTML report (aimon.report).

The report is a view of the store, not part of the run's result: a report that fails
to build is logged and noted on the run, and changes neither the run's status nor its
figures (docs: The HTML report)."""

from __future__ import annotations

import logging

from prefect import task
from prefect.cache_policies import NO_CACHE

from aimon.config import Config
from aimon.report import build_report
from aimon.windows import Window

log = logging.getLogger(__name__)


def rebuild_pages(cfg: Config, window: Window) -> str | None:
    """Rebuild the window's page, its neighbours', the overview and the concern pages
    when report.after_run is on; returns the run note (None when it is off)."""
    if not cfg.report.after_run:
        return None
    try:
        res = build_report(cfg, only_window=window)
    except Exception as err:  # the report never fails the run: a note, not a failure
        log.warning("report.after_run: the HTML report was not rebuilt: %s: %s", type(err).__name__, err)
        return f"report: not rebuilt ({type(err).__name__}: {err}); the run is unaffected, rerun `aimon report`"
    return f"report: {res.pages} pages rebuilt in {res.seconds:.2f}s, {res.url}"


@task(name="report-pages", cache_policy=NO_CACHE, timeout_seconds=300)
def report_task(cfg: Config, window: Window) -> str | None:
    return rebuild_pages(cfg, window)
