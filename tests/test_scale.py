"""The scale-out path in miniature (orchestration.segments): a window read in time
segments, each summarised on its own (on a Dask LocalCluster of 2 workers through
DaskTaskRunner, or one after another in the analyzer's thread), gives the figures of
one read: identical where the statistics are exact, within the stated bound where
sketches are involved; RAG's means to float rounding (the same per-query values,
added in another order)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aimon.errors import ConfigError
from aimon.records import AnalyzerResult
from aimon.stats import stattests as st
from aimon.store.metrics import Store
from aimon.tasks.drift.analyzer import analyze_drift
from aimon.tasks.drift.calculate import compare
from aimon.tasks.drift.features import _drift_ix, feature_specs
from aimon.tasks.drift.reads import read_window
from aimon.tasks.orchestration.run import open_window
from aimon.tasks.orchestration.segments import segment_bounds
from aimon.tasks.quality.analyzer import analyze_quality
from aimon.windows import daily_window, window_containing
from tests.conftest import DAY, PG_URL, make_config, write_duckdb, write_sqlalchemy
from tests.test_flow import write_config

FEATURES = [{"name": "user_tier", "type": "categorical"}, {"name": "language", "type": "categorical"}]
# Figures that depend on when or how fast a run ran, not on the rows.
VOLATILE = {"monitoring_run_duration_seconds", "monitoring_last_success_timestamp_seconds"}
RAG_RELATIVE = 1e-12  # RAG means: the same per-query values summed in another order


def figures(records) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {(r.metric, r.labels): r.value for r in records if r.metric not in VOLATILE}
    assert len(out) == len([r for r in records if r.metric not in VOLATILE]), "duplicate figure"
    return out


def assert_same_figures(one: dict, segmented: dict) -> None:
    assert one.keys() == segmented.keys()
    for key, v in one.items():
        if key[0].startswith(("data_drift", "embedding_drift")):
            assert segmented[key] == v, key  # exact: drift's statistics are exact here
        else:
            # RAG's sums merged in another order; SQL sums of doubles (cost) from DuckDB's
            # parallel aggregation in another process: equal to the last bits only.
            assert math.isclose(segmented[key], v, rel_tol=RAG_RELATIVE, abs_tol=1e-12), key


def test_segments_cover_the_window_exactly_once() -> None:
    for window, n in (
        (daily_window(DAY), 7),  # 86400 s / 7 is not a whole number of microseconds
        (daily_window(dt.date(2026, 3, 29), "Europe/Berlin"), 4),  # a 23-hour DST day
        (window_containing(dt.datetime(2026, 11, 10, 5, 30), "hourly"), 1),
    ):
        segs = segment_bounds(window, n)
        assert len(segs) == n
        assert segs[0].start == window.start and segs[-1].end == window.end
        assert all(a.end == b.start for a, b in itertools.pairwise(segs))
        lengths = {s.end - s.start for s in segs}
        assert max(lengths) - min(lengths) <= dt.timedelta(microseconds=1)
        assert {(s.granularity, s.timezone) for s in segs} == {(window.granularity, window.timezone)}


@pytest.mark.parametrize("bad", [0, -2, 1001, "four"])
def test_segments_config_is_validated_naming_the_key(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"orchestration.segments"):
        make_config("duckdb:///x.duckdb", orchestration={"segments": bad})


@pytest.fixture
def demo_url(tmp_path: Path) -> str:
    """Four demo days ending on DAY (3000 rows a day, RAG columns and a language shift)."""
    from aimon.demo import seed_duckdb

    seed_duckdb(tmp_path / "demo.duckdb", days=4, rows_per_day=3000, seed=5, end=DAY, feedback_table=None)
    return f"duckdb:///{tmp_path / 'demo.duckdb'}"


def run_in_threads(url: str, store_url: str, segments: int) -> tuple[AnalyzerResult, AnalyzerResult]:
    cfg = make_config(
        url,
        store={"url": store_url},
        reference={"previous_windows": 3},
        # 3000 embeddings a day: a cap below that makes the seeded subsample pick rows.
        drift={"features": FEATURES, "embeddings": {"cap": 1000, "mmd_cap": 300, "permutations": 50}},
        orchestration={"segments": segments},
    )
    ctx = open_window(cfg, daily_window(DAY), Store(cfg))
    return analyze_drift(ctx), analyze_quality(ctx)


def test_segments_one_after_another_give_the_figures_of_one_read(demo_url: str, tmp_path: Path) -> None:
    # Separate stores: each run reads its reference windows itself (segmented too).
    one = run_in_threads(demo_url, f"sqlite:///{tmp_path / 'one.sqlite'}", 1)
    seg = run_in_threads(demo_url, f"sqlite:///{tmp_path / 'seg.sqlite'}", 7)
    assert any(n.startswith("drift reference: 3 window(s)") and n.endswith(", 3 read") for n in seg[0].notes)
    assert any("read in 7 time segments, one after another" in n for n in seg[0].notes)
    assert any(n.startswith("RAG: read in 7 time segments") for n in seg[1].notes)
    drift = figures(one[0].records)
    assert {"data_drift_score", "embedding_drift_score"} <= {k[0] for k in drift}
    assert drift[("embedding_drift_detected", ())] == 1.0  # the demo's embeddings move on DAY
    assert_same_figures(figures(one[0].records), figures(seg[0].records))
    rag = {k for k in figures(one[1].records) if k[0].startswith("rag_")}
    assert len(rag) > 10
    assert_same_figures(figures(one[1].records), figures(seg[1].records))


def cdf_gap(approx: st.NumericSample, exact: st.NumericSample) -> float:
    """sup_x |F_approx(x) - F_exact(x)| over every point of either sample."""
    xs = np.union1d(approx.values, exact.values)
    f_exact = np.searchsorted(exact.values, xs, side="right") / exact.n
    cw = np.concatenate([[0.0], approx.cum_weights()])
    f_approx = cw[np.searchsorted(approx.values, xs, side="right")] / cw[-1]
    return float(np.abs(f_approx - f_exact).max())


def test_sketched_segments_stay_within_the_stated_bound(demo_url: str, tmp_path: Path) -> None:
    """A window of n = 3000 rows with a current-sample cap of `exact_max` points instead
    of 1M: segments of at most exact_max rows are merged exactly and then sketched like
    one read (identical); k bigger segments arrive sketched, and the merged sample's CDF
    is within 3/exact_max + k/n of the exact one (one read: 1/exact_max + 1/n; a sketch
    is off by 1/size + one row), so KS statistics differ by at most 4/exact_max + (k+1)/n."""

    def stats(segments: int, exact_max: int) -> tuple[dict, list]:
        cfg = make_config(
            demo_url,
            store={"url": f"sqlite:///{tmp_path / 'store.sqlite'}"},
            orchestration={"segments": segments},
        )
        ctx = open_window(cfg, daily_window(DAY), Store(cfg))
        specs, _ = feature_specs(cfg, ctx.interactions)
        ix = _drift_ix(ctx.interactions, specs, cfg)
        return read_window(ctx, ix, specs, ctx.window, exact_max=exact_max)[0].numeric, specs

    exact, specs = stats(1, 10**9)
    assert {s.n for s in exact.values()} == {3000} and all(s.exact for s in exact.values())

    # Four 6-hour segments of under 2000 rows each (traffic follows the clock), cap 2000:
    # exact per segment, sketched after merging.
    one, seg = stats(1, 2000)[0], stats(4, 2000)[0]
    for name, s in one.items():
        assert not s.exact
        assert np.array_equal(seg[name].values, s.values) and np.array_equal(seg[name].weights, s.weights), name
        assert (seg[name].mean, seg[name].std) == (s.mean, s.std)

    # Cap 300: every segment sketched, then the merged sample sketched again.
    cap, k, n = 300, 4, 3000
    one, seg = stats(1, cap)[0], stats(k, cap)[0]
    for name in one:
        assert seg[name].n == one[name].n == n and len(seg[name].values) <= 2 * cap + 2
        assert not seg[name].exact
        assert cdf_gap(one[name], exact[name]) <= 1 / cap + 1 / n + 1e-12, name
        assert cdf_gap(seg[name], exact[name]) <= 3 / cap + k / n + 1e-12, name
        assert math.isclose(seg[name].mean, exact[name].mean, rel_tol=1e-12)
        assert math.isclose(seg[name].std, exact[name].std, rel_tol=1e-9)

    # Against a reference (the day before, read exactly): KS within 4/cap + (k+1)/n of one read's.
    cfg = make_config(demo_url, drift={"features": FEATURES})
    ctx = open_window(cfg, daily_window(DAY - dt.timedelta(days=1)), Store(cfg))
    ix = _drift_ix(ctx.interactions, specs, cfg)
    ref_stats = read_window(ctx, ix, specs, ctx.window)[0]
    cur_one = read_window(ctx, ix, specs, daily_window(DAY), exact_max=cap)[0]
    seg_ctx = dataclasses.replace(ctx, cfg=make_config(demo_url, orchestration={"segments": 4}))
    cur_seg = read_window(seg_ctx, ix, specs, daily_window(DAY), exact_max=cap)[0]
    num = [s for s in specs if s.kind == "numerical"]
    a, b = compare(ref_stats, cur_one, num, cfg.drift), compare(ref_stats, cur_seg, num, cfg.drift)
    for fa, fb in zip(a.features, b.features, strict=True):
        d_one = st.ks_statistic(ref_stats.numeric[fa.feature], cur_one.numeric[fa.feature])
        d_seg = st.ks_statistic(ref_stats.numeric[fa.feature], cur_seg.numeric[fa.feature])
        assert abs(d_one - d_seg) <= 4 / cap + (k + 1) / n, fa.feature
        assert fa.detected == fb.detected, fa.feature


# -- on a Dask LocalCluster -------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[object]:
    """One LocalCluster of 2 worker processes on 127.0.0.1 for the module (the runs
    reach it through orchestration.dask_address, as a real cluster would be)."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0")
    try:
        yield cluster
    finally:
        cluster.close()


def segments_computed(cluster: object) -> int:
    """How many segment tasks the cluster's scheduler has computed so far (the scheduler
    lives in this process; the workers are separate processes)."""
    prefix = cluster.scheduler.task_prefixes.get("segment_task")  # type: ignore[attr-defined]
    return 0 if prefix is None else int(prefix.state_counts["memory"])


def same_run_on_dask(tmp_path: Path, url: str, store_url: str, cluster: object) -> None:
    from aimon.flows.monitor import monitor_window

    def cfg(name: str, **orchestration: object) -> str:
        (tmp_path / name).mkdir()
        return write_config(
            tmp_path / name,
            url,
            store={"url": store_url.format(name=name)},
            reference={"previous_windows": 2},
            orchestration=orchestration,
        )

    threads = monitor_window(window_start=DAY.isoformat(), config_path=cfg("threads"))
    before = segments_computed(cluster)
    address = cluster.scheduler_address  # type: ignore[attr-defined]
    on_dask = monitor_window(
        window_start=DAY.isoformat(),
        config_path=cfg("dask", task_runner="dask", dask_address=address, segments=4),
    )
    assert threads.status == on_dask.status == "success", (threads.error, on_dask.outcomes)
    assert any("read in 4 time segments, on the Dask workers" in n for n in on_dask.notes)
    assert_same_figures(figures(threads.records), figures(on_dask.records))
    # 4 segments each: drift's window and its 2 reference windows (a fresh store: read,
    # not reused), and RAG's window.
    assert segments_computed(cluster) - before == 4 * 3 + 4


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_segments_on_dask_equal_threads_on_duckdb(tmp_path: Path, frame: pd.DataFrame, dask_cluster: object) -> None:
    # The workers open the DuckDB file read-only alongside this process (a read-write
    # open is exclusive); the store, written by every process, is a SQLite file.
    url = write_duckdb(tmp_path / "wh.duckdb", frame) + "?access_mode=read_only"
    same_run_on_dask(tmp_path, url, f"sqlite:///{tmp_path}/{{name}}-store.sqlite", dask_cluster)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.usefixtures("prefect_harness")
def test_segments_on_dask_equal_threads_on_postgresql(
    tmp_path: Path, frame: pd.DataFrame, pg_schema: str, dask_cluster: object
) -> None:
    url = f"{PG_URL}?options=-csearch_path%3D{pg_schema}"
    write_sqlalchemy(url, frame, "interactions")
    same_run_on_dask(tmp_path, url, f"sqlite:///{tmp_path}/{{name}}-store.sqlite", dask_cluster)
