"""monitor_window end to end, through Prefect, on DuckDB, SQLite and a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from aimon.errors import ContractError
from aimon.flows.monitor import monitor_flow, monitor_window
from aimon.records import ALL, AnalyzerResult
from aimon.store.metrics import Store
from aimon.tasks.registry import ANALYZERS
from aimon.windows import daily_window
from tests import reference
from tests.conftest import DAY, PG_URL, PRICING, make_config, write_sqlalchemy

pytestmark = pytest.mark.usefixtures("prefect_harness")

ANALYTIC = (
    "llm_requests",
    "llm_requests_per_minute",
    "llm_errors",
    "llm_error_rate",
    "llm_latency_seconds",
    "llm_tokens",
    "llm_cost_usd",
    "llm_unpriced_requests",
)


def write_config(tmp_path: Path, url: str, **extra) -> str:
    data = {"warehouse": {"url": url, "interactions_table": "interactions"}, "pricing": PRICING, **extra}
    path = tmp_path / "monitoring.yaml"
    path.write_text(yaml.safe_dump(data, default_flow_style=False, sort_keys=False).replace("'", '"'))
    return str(path)


def stored(url: str, window=None) -> dict[tuple[str, str], float]:
    store = Store(make_config(url))
    window = window or daily_window(DAY)
    figs = store.figures(granularity="daily", start_from=window.start, before=window.end)
    out = {}
    for f in figs:
        k = reference.key(f.metric, **f.labels)
        assert k not in out, f"duplicate figure {k}"
        out[k] = f.value
    return out


def analytic(figs: dict) -> dict:
    return {k: v for k, v in figs.items() if k[0] in ANALYTIC}


@pytest.fixture
def pg_url(pg_schema: str, frame: pd.DataFrame) -> str:
    # search_path puts the warehouse table and the store's tables in the throwaway schema.
    url = f"{PG_URL}?options=-csearch_path%3D{pg_schema}"
    write_sqlalchemy(url, frame, "interactions")
    return url


@pytest.mark.postgres
def test_same_rows_same_figures_on_duckdb_sqlite_postgres(
    tmp_path: Path, duck_url: str, sqlite_url: str, pg_url: str, frame: pd.DataFrame
) -> None:
    window = daily_window(DAY)
    want = reference.operational(frame, window.start, window.end) | reference.cost(
        frame, window.start, window.end, PRICING
    )
    results = {}
    for name, url in (("duckdb", duck_url), ("sqlite", sqlite_url), ("postgresql", pg_url)):
        (tmp_path / name).mkdir()
        summary = monitor_window(
            granularity="daily", window_start=DAY.isoformat(), config_path=write_config(tmp_path / name, url)
        )
        assert summary.status == "success", (name, summary.outcomes)
        results[name] = stored(url)
        reference.compare(analytic(results[name]), want)
    keys = {
        n: set(r)
        - {reference.key("monitoring_run_duration_seconds"), reference.key("monitoring_last_success_timestamp_seconds")}
        for n, r in results.items()
    }
    assert keys["duckdb"] == keys["sqlite"] == keys["postgresql"]


def test_rerun_replaces_the_window_figures(tmp_path: Path, duck_url: str) -> None:
    cfg = write_config(tmp_path, duck_url)
    first = monitor_window(window_start=DAY.isoformat(), config_path=cfg)
    second = monitor_window(window_start=DAY.isoformat(), config_path=cfg)
    figs = Store(make_config(duck_url)).figures(
        granularity="daily", start_from=daily_window(DAY).start, before=daily_window(DAY).end
    )
    assert len(figs) == len({(f.metric, tuple(sorted(f.labels.items()))) for f in figs}) == len(second.records)
    assert {f.run_id for f in figs} == {second.run_id} != {first.run_id}
    runs = Store(make_config(duck_url)).runs_for(daily_window(DAY))
    assert [r["status"] for r in runs] == ["success", "success"]


def test_empty_window_is_a_successful_run_with_zero_requests(tmp_path: Path, duck_url: str) -> None:
    empty_day = DAY - dt.timedelta(days=30)  # a past day the frame has no rows for
    summary = monitor_window(window_start=empty_day.isoformat(), config_path=write_config(tmp_path, duck_url))
    assert summary.status == "success"
    assert any("no data" in n for n in summary.notes)
    figs = stored(duck_url, daily_window(empty_day))
    assert figs[reference.key("llm_requests", model=ALL, endpoint=ALL)] == 0
    assert figs[reference.key("monitoring_rows", status="accepted")] == 0
    assert figs[reference.key("monitoring_run_success")] == 1


def test_one_failing_analyzer_degrades_the_run_and_keeps_the_others(tmp_path: Path, duck_url: str) -> None:
    def broken(ctx) -> AnalyzerResult:
        raise RuntimeError("analyzer exploded")

    with_broken = monitor_flow({**ANALYZERS, "broken": broken})
    summary = with_broken(window_start=DAY.isoformat(), config_path=write_config(tmp_path, duck_url))
    assert summary.status == "degraded"
    assert [o.name for o in summary.outcomes if o.error] == ["broken"]
    figs = stored(duck_url)
    assert figs[reference.key("monitoring_run_success")] == 0
    assert reference.key("llm_requests", model=ALL, endpoint=ALL) in figs
    assert reference.key("llm_cost_usd", model=ALL, endpoint=ALL) in figs
    run = Store(make_config(duck_url)).runs_for(daily_window(DAY))[-1]
    assert run["status"] == "degraded" and "analyzer exploded" in run["error"]


def test_missing_table_fails_the_run_naming_it_and_writes_no_figures(tmp_path: Path, duck_url: str) -> None:
    cfg = write_config(tmp_path, duck_url)
    cfg_missing = Path(cfg).read_text().replace("interactions_table: interactions", "interactions_table: interactionz")
    Path(cfg).write_text(cfg_missing)
    with pytest.raises(ContractError, match="'interactionz' not found"):
        monitor_window(window_start=DAY.isoformat(), config_path=cfg)
    figs = stored(duck_url)
    assert set(k[0] for k in figs) == {"monitoring_run_success", "monitoring_run_duration_seconds"}
    assert figs[reference.key("monitoring_run_success")] == 0
    run = Store(make_config(duck_url)).runs_for(daily_window(DAY))[-1]
    assert run["status"] == "failed" and "interactionz" in run["error"]


def test_failed_rerun_keeps_the_previous_good_figures(tmp_path: Path, duck_url: str) -> None:
    cfg = write_config(tmp_path, duck_url)
    monitor_window(window_start=DAY.isoformat(), config_path=cfg)
    before = analytic(stored(duck_url))
    engine = sa.create_engine(duck_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE interactions RENAME COLUMN model TO model_name"))
    engine.dispose()
    with pytest.raises(ContractError, match="required 'model'"):
        monitor_window(window_start=DAY.isoformat(), config_path=cfg)
    assert analytic(stored(duck_url)) == before
    assert stored(duck_url)[reference.key("monitoring_run_success")] == 0


def _big_payloads(obj: object, path: str = "result") -> list[str]:
    """Rows that would travel through Prefect (or to a Dask worker and back): frames,
    Arrow data, arrays of more than 10,000 values, anywhere inside `obj`."""
    import dataclasses

    import numpy as np
    import pyarrow as pa

    if isinstance(obj, pd.DataFrame | pd.Series | pa.Table | pa.Array | pa.ChunkedArray | pa.RecordBatch):
        return [f"{path}: {type(obj).__name__}"]
    if isinstance(obj, np.ndarray):
        return [f"{path}: ndarray of {obj.size}"] if obj.size > 10_000 else []
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _big_payloads(v, f"{path}[{k!r}]")]
    if isinstance(obj, list | tuple | set | frozenset):
        return [p for i, v in enumerate(obj) for p in _big_payloads(v, f"{path}[{i}]")]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [p for f in dataclasses.fields(obj) for p in _big_payloads(getattr(obj, f.name), f"{path}.{f.name}")]
    return []


def test_no_rows_cross_a_task_boundary(tmp_path: Path) -> None:
    """What each analyzer task hands back to the flow (through Prefect's futures, or
    from a Dask worker) is figures and small summaries, never the window's rows: a
    10M-row day moves as much through Prefect as a 10k-row one."""
    import pickle

    from aimon.demo import seed_duckdb

    seed_duckdb(tmp_path / "demo.duckdb", days=4, rows_per_day=12_000, seed=5, end=DAY)
    data = yaml.safe_load(Path("configs/monitoring.yaml").read_text())
    url = f"duckdb:///{tmp_path / 'demo.duckdb'}"
    data["warehouse"]["url"], data["store"]["url"] = url, url
    data["reference"] = {"previous_windows": 3}
    cfg = tmp_path / "monitoring.yaml"
    cfg.write_text(yaml.safe_dump(data))
    summary = monitor_window(window_start=DAY.isoformat(), config_path=str(cfg), notify=False)
    assert summary.status == "success" and {o.name for o in summary.outcomes} == set(ANALYZERS)
    for o in summary.outcomes:
        assert o.result is not None and o.result.records, o.name
        assert _big_payloads(o.result, o.name) == []
        assert len(pickle.dumps(o.result)) < 256 * 1024, o.name
    assert _big_payloads(summary) == []
