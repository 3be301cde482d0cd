"""Where the report lives and what its pages are called.

The site is a folder (default AIMON_HOME/report, or `report.output`): index.html, one
page per concern, one page per window under windows/, and the plotting library under
assets/. Every link inside it is relative, so the folder works from file:// and can be
copied or zipped as it is."""

from __future__ import annotations

from pathlib import Path

from aimon.config import Config
from aimon.env import aimon_home
from aimon.windows import Window

INDEX = "index.html"
PLOTLY_JS = "assets/plotly.min.js"

# The concern pages, in the order the navigation shows them: file name -> title.
CONCERNS: dict[str, str] = {
    "operational.html": "Traffic, errors, latency",
    "cost.html": "Cost and budgets",
    "quality.html": "Quality",
    "drift.html": "Drift",
    "ab.html": "A/B experiments",
    "alerts.html": "Alerts",
}


def report_dir(cfg: Config, output: str | Path | None = None) -> Path:
    """`output`, else `report.output`, else AIMON_HOME/report (relative paths from the
    current directory)."""
    chosen = output if output is not None else cfg.report.output
    return Path(chosen).expanduser().resolve() if chosen else aimon_home() / "report"


def window_slug(window: Window) -> str:
    """daily-2026-11-28, hourly-2026-11-28T09 (local time in windows.timezone; the
    repeated hour of a DST fall-back gets a -2)."""
    local = window.local_start
    if window.granularity == "daily":
        return f"daily-{local:%Y-%m-%d}"
    return f"hourly-{local:%Y-%m-%dT%H}" + ("-2" if local.fold else "")


def window_page(window: Window) -> str:
    """The window's page, relative to the site's root."""
    return f"windows/{window_slug(window)}.html"


def window_page_url(cfg: Config, window: Window, output: str | Path | None = None) -> str:
    """file:// URL of the window's page (where `aimon report` writes it)."""
    return (report_dir(cfg, output) / window_page(window)).as_uri()
