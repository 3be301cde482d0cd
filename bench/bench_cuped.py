"""How long CUPED adds to the A/B analyzer on DuckDB: an experiment on day 14 with
`--rows` rows a day (and as many a day over the 14-day pre-period), 200,000 users with
a lasting latency level, two continuous metrics; the analyzer timed with CUPED off and
on (the request-level analysis reads one window; CUPED reads the experiment's rows since
its start and the pre-period's). docs/analyses/abtest.md, "CUPED".

    nice .venv/bin/python bench/bench_cuped.py [--rows 500000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from aimon.config import parse_config
from aimon.store.metrics import Store
from aimon.tasks.abtest.analyzer import analyze_abtest
from aimon.tasks.orchestration.run import open_window
from aimon.windows import daily_window

START = dt.date(2026, 11, 1)
USERS = 200_000
METRICS = [
    {"name": "latency", "type": "continuous", "column": "latency_seconds", "good": "lower"},
    {"name": "tokens", "type": "continuous", "column": "output_tokens", "good": "lower"},
]


def write(path: Path, rows: int) -> None:
    rng = np.random.default_rng(1)
    level = rng.lognormal(0, 0.5, USERS)
    con = duckdb.connect(str(path))
    for d in range(-14, 14):
        uid = rng.integers(0, USERS, rows)
        day = np.datetime64(dt.datetime.combine(START + dt.timedelta(days=d), dt.time()))
        during = d >= 0
        t = pa.table(  # noqa: F841  read by DuckDB's replacement scan
            {
                "timestamp": day + rng.uniform(0, 86400e6, rows).astype("timedelta64[us]"),
                "model": np.full(rows, "gpt-4o"),
                "status": np.full(rows, "ok"),
                "latency_seconds": level[uid] * rng.lognormal(0, 0.35, rows),
                "output_tokens": rng.integers(10, 900, rows),
                "user_id": pa.array(uid).cast(pa.string()),
                "experiment": pa.array(np.full(rows, "e1") if during else [None] * rows, pa.string()),
                "variant": pa.array(
                    np.where(uid % 2 == 0, "control", "treatment") if during else [None] * rows, pa.string()
                ),
            }
        )
        con.execute(
            "CREATE TABLE interactions AS SELECT * FROM t" if d == -14 else "INSERT INTO interactions SELECT * FROM t"
        )
    con.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=500_000, help="rows a day")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="aimon-cuped-"))
    path = work / "warehouse.duckdb"
    path.unlink(missing_ok=True)
    write(path, args.rows)
    day = START + dt.timedelta(days=13)
    for enabled in (False, True):
        exp = {"name": "e1", "start": START.isoformat(), "metrics": METRICS, "cuped": {"enabled": enabled}}
        cfg = parse_config({"warehouse": {"url": f"duckdb:///{path}"}, "experiments": [exp]}, source="<bench>")
        analyze_abtest(open_window(cfg, daily_window(day), Store(cfg)))  # the catch-up of earlier windows
        t0 = time.perf_counter()
        analyze_abtest(open_window(cfg, daily_window(day), Store(cfg)))
        took = time.perf_counter() - t0
        print(f"rows a day {args.rows:,}, day 14, CUPED {'on ' if enabled else 'off'}: {took:.2f} s", flush=True)


if __name__ == "__main__":
    main()
