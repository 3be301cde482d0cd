"""Build the site: read the store once (aimon.report.data), render every page, write
them (each through a temporary file and a rename, so a browser never reads half a
page), and ship plotly's JavaScript once under assets/."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import plotly
import plotly.offline

from aimon.config import Config
from aimon.report import memo
from aimon.report.ab import ab
from aimon.report.alerts import alerts
from aimon.report.concerns import operational, quality
from aimon.report.costopt import cost_page
from aimon.report.data import ReportData, choose_granularity, load
from aimon.report.drift import drift
from aimon.report.pages import KEY_FIGURES, overview, window_page_html
from aimon.report.paths import INDEX, PLOTLY_JS, report_dir, window_page
from aimon.windows import Window

CONCERN_PAGES: dict[str, Callable[[ReportData], str]] = {
    "operational.html": operational,
    "cost.html": cost_page,
    "quality.html": quality,
    "drift.html": drift,
    "ab.html": ab,
    "alerts.html": alerts,
}


# Every metric a concern page or the overview reads (report.after_run reads only these,
# plus the rebuilt windows' every figure). tests/test_report.py checks the pages built
# from these alone equal the full build's.
CHARTED = (
    "llm_requests", "llm_error_rate", "llm_latency_seconds", "llm_errors", "llm_cost_usd", "llm_budget_used_ratio",
    "llm_budget_usd", "llm_cost_forecast_usd", "llm_cost_forecast_usd_low", "llm_cost_forecast_usd_high",
    "llm_cost_saving_usd", "llm_cache_repeat_share", "llm_tokens", "llm_unpriced_requests", "model_f1",
    "model_accuracy",
    "generation_rouge", "generation_bleu", "rag_precision_at_k", "rag_recall_at_k", "rag_ndcg_at_k", "rag_mrr",
    "feedback_rating_mean", "feedback_helpful_ratio", "data_drift_share", "data_drift_score",
    "data_drift_p_value_adjusted", "data_drift_detected", "embedding_drift_score", "embedding_drift_detected",
    "ab_status", "ab_metric_status", "ab_lift", "ab_lift_ci_low", "ab_lift_ci_high", "ab_srm_p_value", "ab_units",
    "ab_regression_detected", "monitoring_rows",
)  # fmt: skip


def charted_metrics(cfg: Config) -> tuple[str, ...]:
    """CHARTED, the key figures' metrics, the alert rules' (the alerts page charts them)
    and their min_sample metrics (the n behind a drawn bound)."""
    rules = cfg.alerts.rules
    samples = (r.min_sample.metric for r in rules if r.min_sample is not None)
    return tuple(dict.fromkeys((*CHARTED, *(k[1] for k in KEY_FIGURES), *(r.metric for r in rules), *samples)))


@dataclass(frozen=True)
class ReportResult:
    index: Path
    pages: int  # written by this build
    windows: int  # windows in the report
    seconds: float
    largest_page_bytes: int
    granularity: str
    problem: str | None = None  # why the report shows nothing (no store yet)

    @property
    def url(self) -> str:
        return self.index.as_uri()


def _write(path: Path, text: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = text.encode()
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return len(data)


def write_assets(out: Path) -> None:
    """plotly.js, once per plotly version (3.5 MB: not rewritten on every build)."""
    js, stamp = out / PLOTLY_JS, out / "assets" / "plotly.version"
    if js.exists() and stamp.exists() and stamp.read_text() == plotly.__version__:
        return
    _write(js, plotly.offline.get_plotlyjs())
    _write(stamp, plotly.__version__)


def build_report(
    cfg: Config,
    *,
    output: str | Path | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    granularity: str | None = None,
    only_window: Window | None = None,
) -> ReportResult:
    """Write the report. With `only_window` (report.after_run), only the pages a new run
    of that window changes: its page and its neighbours' (their links), the overview and
    the concern pages."""
    started = time.perf_counter()
    out = report_dir(cfg, output)
    g = only_window.granularity if only_window is not None else choose_granularity(cfg, granularity)
    if only_window is None:
        data = load(cfg, g, start, end)
    else:  # the concern pages' metrics, and every figure of the pages rebuilt
        starts = tuple(only_window.start + k * (only_window.end - only_window.start) for k in (-1, 0, 1))
        data = load(cfg, g, start, end, charted=charted_metrics(cfg), every_figure_of=starts)
    data.memo_in = memo.read(out)
    write_assets(out)
    sizes = [_write(out / INDEX, overview(data))]
    sizes += [_write(out / name, render_page(data)) for name, render_page in CONCERN_PAGES.items()]
    here = next((i for i, w in enumerate(data.windows) if only_window and w.start == only_window.start), None)
    for i, w in enumerate(data.windows):
        # after a run: its window's page and its neighbours' (their prev/next links change)
        if only_window is not None and (here is None or abs(i - here) > 1):
            continue
        sizes.append(_write(out / window_page(w), window_page_html(data, i)))
    if data.memo_out:
        _write(out / memo.MEMO, memo.dumps(data.memo_out))  # through a rename, as the pages
    return ReportResult(
        out / INDEX, len(sizes), len(data.windows), time.perf_counter() - started, max(sizes), g, data.problem
    )
