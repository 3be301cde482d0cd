"""The static HTML report: a site built from the store's figures, runs and alerts
(never the warehouse), that opens from file:// with no server and no network.

`build_report(cfg)` writes it (default AIMON_HOME/report/); `aimon report` is the
command; with `report.after_run: true` each run rebuilds its pages
(aimon.tasks.report). What each page shows: docs/report.md.
"""

from aimon.report.build import ReportResult, build_report
from aimon.report.paths import report_dir, window_page, window_page_url

__all__ = ["ReportResult", "build_report", "report_dir", "window_page", "window_page_url"]
