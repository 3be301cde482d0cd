"""Operational and cost figures against an independent pandas/numpy computation, on
an embedded DuckDB and on SQLite (the numpy quantile path)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from aimon.records import ALL
from aimon.store.metrics import Store
from aimon.tasks.contract import check_contract
from aimon.tasks.cost import analyze_cost
from aimon.tasks.operational import analyze_operational
from aimon.tasks.orchestration.run import open_window
from aimon.windows import daily_window
from tests import reference
from tests.conftest import DAY, PRICING, make_config, write_duckdb


def figures(result) -> dict[tuple[str, str], float]:
    return {(r.metric, r.labels_json): r.value for r in result.records}


def only(got: dict, prefix: tuple[str, ...]) -> dict:
    return {k: v for k, v in got.items() if k[0] in prefix}


@pytest.mark.parametrize("backend", ["duckdb", "sqlite"])
def test_operational_and_cost_equal_reference(backend: str, request, frame: pd.DataFrame) -> None:
    url = request.getfixturevalue("duck_url" if backend == "duckdb" else "sqlite_url")
    cfg = make_config(url)
    window = daily_window(DAY)
    ctx = open_window(cfg, window, Store(cfg))

    op = figures(analyze_operational(ctx))
    reference.compare(op, reference.operational(frame, window.start, window.end))

    cost = analyze_cost(ctx)
    got = only(figures(cost), ("llm_cost_usd", "llm_tokens", "llm_unpriced_requests"))
    reference.compare(got, reference.cost(frame, window.start, window.end, PRICING))
    # llama-3-70b has no price: its unlogged requests are unpriced and named.
    assert got[reference.key("llm_unpriced_requests", model="llama-3-70b")] > 0
    assert any("llama-3-70b" in n and "no price" in n for n in cost.notes)


def test_contract_counts_each_rejected_row_once_by_reason(duck_url: str, frame: pd.DataFrame) -> None:
    cfg = make_config(duck_url)
    window = daily_window(DAY)
    ctx = open_window(cfg, window, Store(cfg))
    report = check_contract(ctx.warehouse, ctx.interactions, window)
    rows = reference.in_window(frame, window.start, window.end)
    assert report.accepted == len(reference.accepted(rows))
    assert report.accepted + report.rejected_total == len(rows)
    assert report.rejected["null_model"] == int(rows["model"].isna().sum())
    assert report.rejected["null_status"] == 1
    assert report.rejected["negative_latency_seconds"] == int((rows["latency_seconds"] < 0).sum())
    assert report.rejected["negative_input_tokens"] == int((rows["input_tokens"] < 0).fillna(False).sum())
    assert report.rejected["cached_exceeds_input"] == 1
    assert report.rejected["negative_cost_usd"] == 1
    assert report.null_timestamp_rows == 1
    # Every checked reason is a figure, zero or not, so the series are stable.
    recs = {(r.metric, r.labels): r.value for r in report.records()}
    assert recs[("monitoring_rows", (("reason", "negative_output_tokens"), ("status", "rejected")))] == 0
    assert recs[("monitoring_rows", (("status", "accepted"),))] == report.accepted


def test_unknown_and_oddly_cased_statuses(duck_url: str) -> None:
    cfg = make_config(duck_url)
    ctx = open_window(cfg, daily_window(DAY), Store(cfg))
    got = figures(analyze_operational(ctx))
    other = got[reference.key("llm_errors", model="gpt-4o", endpoint="unknown", error_type="other")]
    timeout = got[reference.key("llm_errors", model="gpt-4o", endpoint="unknown", error_type="timeout")]
    assert other >= 1 and timeout >= 1  # 'weird_new_error' -> other, ' Timeout ' -> timeout
    # 'OK' with a null endpoint is a request, not an error.
    assert got[reference.key("llm_requests", model="gpt-4o", endpoint="unknown")] == 3 + other + timeout - 2


def test_price_change_inside_a_window_prices_each_side_at_its_rate(tmp_path: Path) -> None:
    # A New York day spans two UTC dates, so a price effective at the second UTC
    # midnight changes the rate mid-window.
    day = dt.date(2026, 11, 10)
    rows = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2026-11-10 12:00", "2026-11-11 02:00", "2026-11-11 03:00"]),
            "model": ["m", "m", "m"],
            "status": ["ok", "ok", "ok"],
            "input_tokens": [1_000_000, 1_000_000, 2_000_000],
            "output_tokens": [0, 1_000_000, 0],
            "cached_input_tokens": [0, 500_000, 0],
        }
    )
    url = write_duckdb(tmp_path / "p.duckdb", rows)
    pricing = [
        {"model": "m", "input_per_1m": 1.0, "output_per_1m": 2.0, "effective_from": "2026-01-01"},
        {
            "model": "m",
            "input_per_1m": 10.0,
            "output_per_1m": 20.0,
            "cached_input_per_1m": 4.0,
            "effective_from": "2026-11-11",
        },
    ]
    cfg = make_config(url, windows={"timezone": "America/New_York"}, pricing=pricing, budgets=[])
    window = daily_window(day, "America/New_York")
    assert window.start == dt.datetime(2026, 11, 10, 5) and window.end == dt.datetime(2026, 11, 11, 5)
    got = figures(analyze_cost(open_window(cfg, window, Store(cfg))))
    # 1M input at $1; then 0.5M input at $10 + 0.5M cached at $4 + 1M output at $20; then 2M at $10.
    assert got[reference.key("llm_cost_usd", model=ALL, endpoint=ALL)] == pytest.approx(1 + 5 + 2 + 20 + 20)


def test_logged_cost_is_used_unless_reprice(tmp_path: Path) -> None:
    rows = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2026-11-10 01:00", "2026-11-10 02:00"]),
            "model": ["gpt-4o", "gpt-4o"],
            "status": ["ok", "ok"],
            "input_tokens": [1_000_000, 1_000_000],
            "output_tokens": [0, 0],
            "cost_usd": [7.0, None],
        }
    )
    url = write_duckdb(tmp_path / "c.duckdb", rows)
    total = reference.key("llm_cost_usd", model=ALL, endpoint=ALL)
    cfg = make_config(url, budgets=[])
    assert figures(analyze_cost(open_window(cfg, daily_window(DAY), Store(cfg))))[total] == pytest.approx(7.0 + 2.5)
    cfg = make_config(url, budgets=[], cost={"reprice": True})
    assert figures(analyze_cost(open_window(cfg, daily_window(DAY), Store(cfg))))[total] == pytest.approx(2.5 + 2.5)


def test_budget_month_to_date_uses_stored_windows_and_forecasts(tmp_path: Path) -> None:
    rows = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2026-11-10 01:00"]),
            "model": ["gpt-4o"],
            "status": ["ok"],
            "input_tokens": [0],
            "output_tokens": [0],
            "cost_usd": [30.0],
        }
    )
    url = write_duckdb(tmp_path / "b.duckdb", rows)
    cfg = make_config(
        url,
        budgets=[
            {"scope": "total", "period": "month", "usd": 1000},
            {"scope": "total", "period": "day", "usd": 60},
            {"scope": "gpt", "model": "gpt-4o", "period": "month", "usd": 100},
        ],
    )
    store = Store(cfg)
    store.ensure()
    from aimon.records import MetricRecord

    # Nine earlier November days already stored at $20, one October day that must not count.
    for d in range(1, 10):
        store.replace_window(
            daily_window(dt.date(2026, 11, d)), [MetricRecord.of("llm_cost_usd", 20, model=ALL, endpoint=ALL)], "r"
        )
    store.replace_window(
        daily_window(dt.date(2026, 10, 31)), [MetricRecord.of("llm_cost_usd", 500, model=ALL, endpoint=ALL)], "r"
    )
    got = figures(analyze_cost(open_window(cfg, daily_window(DAY), store)))
    assert got[reference.key("llm_budget_used_ratio", scope="total", period="month")] == pytest.approx(
        (9 * 20 + 30) / 1000
    )
    assert got[reference.key("llm_budget_used_ratio", scope="total", period="day")] == pytest.approx(30 / 60)
    assert got[reference.key("llm_cost_forecast_usd", scope="total")] == pytest.approx((9 * 20 + 30) / 10 * 30)
    # The model-scoped budget sees only that model's stored figures (none yet).
    assert got[reference.key("llm_budget_used_ratio", scope="gpt", period="month")] == pytest.approx(30 / 100)
