"""What the notification tests share (tests/test_notify.py: Slack and email;
tests/test_channels_pd_webhook.py: PagerDuty and webhooks): two rules on gpt-4o's
figures, those figures, and a day of figures stored and judged through the real alert
pipeline (rules -> state -> outbox -> channels)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aimon.config import Config
from aimon.records import MetricRecord
from aimon.store.metrics import Store
from aimon.tasks.alerts.pipeline import AlertReport, alert_window
from aimon.windows import daily_window

D0 = dt.date(2026, 11, 1)  # day 0 of the runs
NOW = dt.datetime(2026, 11, 20, 12, 0)  # wall clock for silences and expiry

# A threshold rule per model and a baseline rule, both on the "oncall" route.
ERROR_RATE_HIGH: dict[str, Any] = {
    "name": "ErrorRateHigh",
    "metric": "llm_error_rate",
    "labels": {"endpoint": "__all__", "model": "!=__all__"},
    "op": ">",
    "threshold": 0.05,
    "severity": "critical",
    "route": "oncall",
    "summary": "{model} fails {value:.1%} of requests",
    "runbook": "https://runbooks.example.com/llm-errors",
}
LATENCY_P95_HIGH: dict[str, Any] = {
    "name": "LatencyP95High",
    "metric": "llm_latency_seconds",
    "labels": {"quantile": "0.95"},
    "op": ">",
    "baseline": {"windows": 3, "min_windows": 2, "factor": 1.5},
    "severity": "warning",
    "route": "oncall",
}


def gpt4o_figures(error_rate: float, p95: float) -> list[MetricRecord]:
    """gpt-4o's error rate and p95 latency (claude-3-5-sonnet's error rate stays at 1%)."""
    return [
        MetricRecord.of("llm_error_rate", error_rate, model="gpt-4o", endpoint="__all__"),
        MetricRecord.of("llm_error_rate", 0.01, model="claude-3-5-sonnet", endpoint="__all__"),
        MetricRecord.of("llm_latency_seconds", p95, model="gpt-4o", endpoint="chat", quantile="0.95"),
    ]


def run_day(
    cfg: Config, day_index: int, recs: list[MetricRecord], *, send: bool = True, now: dt.datetime = NOW
) -> AlertReport:
    """Store `recs` as day `day_index`'s figures (run id runNN) and judge its alerts."""
    store = Store(cfg)
    store.ensure()
    window = daily_window(D0 + dt.timedelta(days=day_index))
    run_id = f"run{day_index:02d}"
    store.replace_window(window, recs, run_id)
    return alert_window(cfg, store, window, run_id, send=send, now=now)
