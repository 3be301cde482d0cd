"""Malformed embeddings never fail drift: each one is left out and counted
(embedding_rows_rejected), feature drift keeps its row, embedding drift runs on the
rest, and a reference window holding one (or holding nothing usable) never fails a
later window. The demo's four days, embeddings stored as JSON text so that every kind
of malformed value can be written."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

from aimon.records import AnalyzerResult
from aimon.store.metrics import Store
from aimon.tasks.contract import check_contract
from aimon.tasks.drift.analyzer import analyze_drift
from aimon.tasks.orchestration.run import open_window
from aimon.windows import daily_window
from tests.conftest import DAY, make_config

FEATURES = [{"name": "user_tier", "type": "categorical"}, {"name": "language", "type": "categorical"}]
EMBEDDINGS = {"cap": 1000, "mmd_cap": 200, "permutations": 50}
ZERO = "[0, 0, 0, 0, 0, 0, 0, 0]"
MALFORMED = {  # reason -> the value written into one row of the day before DAY
    "wrong_dimension": "[0.1, 0.2, 0.3]",
    "nonfinite": "[NaN, 0, 0, 0, 0, 0, 0, 0]",
    "non_numeric": '["a", 0, 0, 0, 0, 0, 0, 0]',
    "not_a_list": '{"embedding": 1}',
    "not_json": "not json",
}


def seed(path: Path) -> None:
    from aimon.demo import seed_duckdb

    seed_duckdb(path, days=4, rows_per_day=1500, seed=5, end=DAY, feedback_table=None)
    con = duckdb.connect(str(path))
    try:
        con.execute(
            "CREATE OR REPLACE TABLE interactions AS "
            "SELECT * REPLACE (CAST(to_json(embedding) AS VARCHAR) AS embedding) FROM interactions"
        )
    finally:
        con.close()


def corrupt(path: Path, day: dt.date, values: list[str] | None = None, every: str | None = None) -> None:
    """`values` into the first rows of `day` (by request_id), or `every` into all of them."""
    con = duckdb.connect(str(path))
    try:
        day_rows = "timestamp >= ? AND timestamp < ?"
        bounds = [dt.datetime.combine(day, dt.time()), dt.datetime.combine(day + dt.timedelta(days=1), dt.time())]
        if every is not None:
            con.execute(f"UPDATE interactions SET embedding = ? WHERE {day_rows}", [every, *bounds])
            return
        query = f"SELECT request_id FROM interactions WHERE {day_rows} ORDER BY 1"
        ids = [r[0] for r in con.execute(query, bounds).fetchall()]
        for rid, value in zip(ids, values or [], strict=False):
            con.execute("UPDATE interactions SET embedding = ? WHERE request_id = ?", [value, rid])
    finally:
        con.close()


@pytest.fixture
def warehouses(tmp_path: Path) -> tuple[str, str]:
    """(clean, with one malformed embedding of each kind on the day before DAY)."""
    clean, bad = tmp_path / "clean.duckdb", tmp_path / "bad.duckdb"
    seed(clean)
    shutil.copy(clean, bad)
    corrupt(bad, DAY - dt.timedelta(days=1), list(MALFORMED.values()))
    return f"duckdb:///{clean}", f"duckdb:///{bad}"


def run(url: str, day: dt.date, store: Path | None = None, segments: int = 1, **embeddings: object) -> AnalyzerResult:
    cfg = make_config(
        url,
        reference={"previous_windows": 3},
        drift={"features": FEATURES, "embeddings": {**EMBEDDINGS, **embeddings}},
        orchestration={"segments": segments},
        **({"store": {"url": f"duckdb:///{store}"}} if store else {}),
    )
    return analyze_drift(open_window(cfg, daily_window(day), Store(cfg)))


def figures(res: AnalyzerResult, prefix: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(r.metric, r.labels): r.value for r in res.records if r.metric.startswith(prefix)}


def rejected(res: AnalyzerResult) -> dict[str, float]:
    return {dict(r.labels)["reason"]: r.value for r in res.records if r.metric == "embedding_rows_rejected"}


def test_each_malformed_embedding_is_rejected_and_counted_and_drift_runs(warehouses: tuple[str, str]) -> None:
    clean_url, bad_url = warehouses
    day = DAY - dt.timedelta(days=1)
    clean, bad = run(clean_url, day), run(bad_url, day)
    assert rejected(bad) == dict.fromkeys(MALFORMED, 1.0)
    assert rejected(clean) == dict.fromkeys(MALFORMED, 0.0)  # every reason a figure, zero or not
    note = next(n for n in bad.notes if "malformed embeddings" in n)
    assert "5 malformed embeddings in column 'embedding'" in note and "1 wrong_dimension (not 8 long)" in note
    # Feature drift never sees the embeddings: the very figures of the clean warehouse.
    assert figures(bad, "data_drift") == figures(clean, "data_drift") != {}
    # Embedding drift ran on the other rows (the demo's embeddings only move on DAY).
    assert figures(bad, "embedding_drift_detected") == {("embedding_drift_detected", ()): 0.0}
    assert figures(bad, "embedding_drift_score")


def test_segments_count_malformed_embeddings_like_one_read(warehouses: tuple[str, str], tmp_path: Path) -> None:
    _, bad_url = warehouses
    day = DAY - dt.timedelta(days=1)
    one, seg = run(bad_url, day), run(bad_url, day, tmp_path / "other-store.duckdb", segments=4)
    assert rejected(seg) == rejected(one) == dict.fromkeys(MALFORMED, 1.0)
    assert figures(seg, "embedding_drift") == figures(one, "embedding_drift") != {}


@pytest.mark.parametrize("stored", [True, False], ids=["reference-stored", "reference-read"])
def test_a_reference_window_holding_malformed_embeddings_never_fails_a_later_one(
    warehouses: tuple[str, str], stored: bool, tmp_path: Path
) -> None:
    _, bad_url = warehouses
    store = None if stored else tmp_path / "fresh-store.duckdb"  # nothing stored yet: the reference is read
    if stored:
        run(bad_url, DAY - dt.timedelta(days=1))  # stores that window's statistics, usable rows only
    res = run(bad_url, DAY, store)
    assert rejected(res) == dict.fromkeys(MALFORMED, 0.0)
    assert figures(res, "data_drift_share")
    assert figures(res, "embedding_drift_detected") == {("embedding_drift_detected", ()): 1.0}  # DAY's shift


def test_a_reference_window_with_no_usable_embedding_contributes_none(tmp_path: Path) -> None:
    """One reference day all malformed, another all of another length: DAY still gets its
    embedding drift, from the remaining reference day, and the notes say why."""
    path = tmp_path / "wh.duckdb"
    seed(path)
    corrupt(path, DAY - dt.timedelta(days=3), every="not json")
    corrupt(path, DAY - dt.timedelta(days=2), every="[0.1, 0.2, 0.3]")
    url = f"duckdb:///{path}"
    all_bad = run(url, DAY - dt.timedelta(days=3))
    # Every embedding of that day's accepted rows (the contract's rejected rows are never read).
    cfg = make_config(url)
    window = daily_window(DAY - dt.timedelta(days=3))
    ctx = open_window(cfg, window, Store(cfg))
    assert rejected(all_bad)["not_json"] == check_contract(ctx.warehouse, ctx.interactions, window).accepted > 0
    assert any(f"{rejected(all_bad)['not_json']:,.0f} malformed embeddings" in n for n in all_bad.notes)
    res = run(url, DAY)
    assert figures(res, "embedding_drift_detected") == {("embedding_drift_detected", ()): 1.0}
    assert any(
        "1 reference window(s) left out, their embeddings are 3 long, the current window's 8" in n for n in res.notes
    )
    centroid = res.details["report"].embeddings[0]
    assert centroid.n_reference > 0
    # Pinning the dimension: the 3-long day is rejected row by row instead.
    pinned = run(url, DAY - dt.timedelta(days=2), dimension=8)
    assert rejected(pinned)["wrong_dimension"] > 0 and not figures(pinned, "embedding_drift_score")
