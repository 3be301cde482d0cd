"""Drift benchmark: aimon's drift analyzer vs Evidently's DataDriftPreset, same frames,
same process.

12 numerical + 2 categorical features, `--rows` a side (a reference day and a current
day in an embedded DuckDB). aimon is timed cold (reference statistics computed and
stored) and warm (reference statistics reused: the daily case), reading from the
warehouse; Evidently gets the two days as pandas frames already in memory.

    nice -n 10 .venv/bin/python bench/bench_drift.py                      # 1M a side, with Evidently
    nice -n 10 .venv/bin/python bench/bench_drift.py --rows 10000000 --no-evidently
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_NUM, N_CAT = 12, 2
DAY = dt.date(2026, 11, 2)


def rss_gib() -> float:
    """This process's peak RSS. VmHWM, not getrusage: ru_maxrss survives fork + exec on
    Linux, so a child would report its parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def make_day(day: dt.date, rows: int, rng: np.random.Generator, drift: bool) -> pa.Table:
    start = np.datetime64(day.isoformat(), "us")
    ts = start + np.sort(rng.integers(0, 86_400_000_000, rows)).astype("timedelta64[us]")
    cols: dict[str, pa.Array] = {
        "timestamp": pa.array(ts, pa.timestamp("us")),
        "model": pa.array(np.where(rng.random(rows) < 0.5, "gpt-4o", "gpt-4o-mini")),
        "status": pa.array(np.full(rows, "ok")),
    }
    for i in range(N_NUM):
        x = rng.standard_normal(rows) if i % 2 == 0 else rng.lognormal(0, 0.6, rows)
        if drift and i < 3:
            x = x + 0.3 * (i + 1)  # three features move; the other nine do not
        cols[f"f{i}"] = pa.array(np.round(x, 5) if i % 3 == 2 else x)
    for j in range(N_CAT):
        p = np.array([0.5, 0.3, 0.15, 0.05]) if not (drift and j == 0) else np.array([0.35, 0.3, 0.15, 0.2])
        cols[f"c{j}"] = pa.array(np.array(["a", "b", "c", "d"])[rng.choice(4, rows, p=p)])
    return pa.table(cols)


def seed(path: Path, rows: int) -> None:
    import duckdb

    rng = np.random.default_rng(11)
    con = duckdb.connect(str(path))
    for k, (day, drift) in enumerate(((DAY - dt.timedelta(days=1), False), (DAY, True))):
        chunk = 2_000_000
        done = 0
        while done < rows:
            t = make_day(day, min(chunk, rows - done), rng, drift)
            con.register("_t", t)
            con.execute(
                "CREATE TABLE interactions AS SELECT * FROM _t"
                if k == 0 and done == 0
                else "INSERT INTO interactions SELECT * FROM _t"
            )
            con.unregister("_t")
            done += t.num_rows
    con.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows a side")
    ap.add_argument("--no-evidently", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warm-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.warm_only is not None:
        warm_only(args.warm_only, args.repeat)
        return
    tmp = Path(tempfile.mkdtemp(prefix="aimon-bench-drift-"))
    try:
        bench(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the 10M warehouse is a few GB


def drift_config(path: Path) -> dict:
    feats = [{"name": f"f{i}", "type": "numerical"} for i in range(N_NUM)]
    feats += [{"name": f"c{j}", "type": "categorical"} for j in range(N_CAT)]
    return {
        "warehouse": {"url": f"duckdb:///{path}"},
        "reference": {"previous_windows": 1},
        "contract": {"check_null_timestamps": False},
        "drift": {"features": feats, "builtins": False, "embeddings": None},
    }


def warm_only(path: Path, repeat: int) -> None:
    """A fresh process on an existing warehouse whose reference statistics are stored:
    the daily case, and a peak RSS that is the analyzer's, not the seeding's."""
    from aimon.config import parse_config
    from aimon.store.metrics import Store
    from aimon.tasks.drift.analyzer import analyze_drift
    from aimon.tasks.orchestration.run import open_window
    from aimon.windows import daily_window

    cfg = parse_config(drift_config(path))
    ctx = open_window(cfg, daily_window(DAY), Store(cfg))
    base = rss_gib()
    times, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        res = analyze_drift(ctx)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        assert res.details["reference_windows_read"] == 0
    print(
        f"fresh process, warm, median of {repeat}: {statistics.median(times):.2f} s "
        f"(CPU {statistics.median(cpu):.2f} s); peak RSS {rss_gib():.2f} GiB (after imports {base:.2f} GiB)"
    )


def bench(args: argparse.Namespace, tmp: Path) -> None:
    os.environ["AIMON_HOME"] = str(tmp / ".aimon")
    from aimon.config import parse_config
    from aimon.store.metrics import Store
    from aimon.tasks.drift.analyzer import analyze_drift
    from aimon.tasks.orchestration.run import open_window
    from aimon.windows import daily_window

    t0 = time.perf_counter()
    seed(tmp / "wh.duckdb", args.rows)
    print(f"seeded 2 x {args.rows:,} rows in {time.perf_counter() - t0:.1f} s")
    cfg = parse_config(drift_config(tmp / "wh.duckdb"))
    ctx = open_window(cfg, daily_window(DAY), Store(cfg))
    t = time.perf_counter()
    cold = analyze_drift(ctx)
    cold_s = time.perf_counter() - t
    assert cold.details["reference_windows_read"] == 1
    warm, warm_cpu = [], []
    for _ in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        res = analyze_drift(ctx)
        warm.append(time.perf_counter() - t)
        warm_cpu.append(time.process_time() - c)
        assert res.details["reference_windows_read"] == 0
    ours = statistics.median(warm)
    ours_rss = rss_gib()
    drifted = sorted(f.feature for f in res.details["report"].drifted)
    print(f"aimon drift, cold (reference statistics computed): {cold_s:.2f} s")
    print(
        f"aimon drift, warm (reference statistics reused), median of {args.repeat}: {ours:.2f} s "
        f"(CPU {statistics.median(warm_cpu):.2f} s, this process, all threads)"
    )
    print(f"aimon peak RSS: {ours_rss:.2f} GiB; drifted: {', '.join(drifted)}", flush=True)
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    from aimon.engines import get_engine

    get_engine(cfg.warehouse.url).dispose()  # release the DuckDB file for the child
    import subprocess

    subprocess.run(
        [sys.executable, "-u", __file__, "--warm-only", str(tmp / "wh.duckdb"), "--repeat", str(args.repeat)],
        check=False,
        env={**os.environ, "AIMON_HOME": str(tmp / ".aimon")},
    )
    if args.no_evidently:
        return

    cols = ", ".join([f"f{i}" for i in range(N_NUM)] + [f"c{j}" for j in range(N_CAT)])
    # Through the process's engine: DuckDB allows one database instance per file.
    with get_engine(cfg.warehouse.url).connect() as conn:
        raw = conn.connection.driver_connection
        ref = raw.sql(f"SELECT {cols} FROM interactions WHERE timestamp < '{DAY}'").to_arrow_table().to_pandas()
        cur = raw.sql(f"SELECT {cols} FROM interactions WHERE timestamp >= '{DAY}'").to_arrow_table().to_pandas()
    t = time.perf_counter()
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    import_s = time.perf_counter() - t
    definition = DataDefinition(
        numerical_columns=[f"f{i}" for i in range(N_NUM)], categorical_columns=[f"c{j}" for j in range(N_CAT)]
    )
    t, c = time.perf_counter(), time.process_time()
    snap = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=definition), Dataset.from_pandas(ref, data_definition=definition)
    )
    ev = time.perf_counter() - t
    ev_cpu = time.process_time() - c
    snap.dict()
    print(
        f"evidently DataDriftPreset (frames in memory, import {import_s:.1f} s not counted): "
        f"{ev:.1f} s (CPU {ev_cpu:.1f} s)"
    )
    print(f"peak RSS after Evidently: {rss_gib():.2f} GiB")
    print(
        f"ratio: {ev / ours:.0f}x faster (warm), {ev / cold_s:.0f}x (cold); "
        f"CPU time {ev_cpu / statistics.median(warm_cpu):.0f}x"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
