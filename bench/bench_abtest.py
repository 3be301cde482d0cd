"""Wall time and peak memory of the A/B analyzer on one large day.

For each size, one UTC day of demo interactions and their feedback (10% of requests
rated) is written to a fresh DuckDB file under .aimon/bench/ (not measured). Then, three
times, a fresh Python process runs `aimon.tasks.abtest.analyze_abtest` for that day with the
demo's experiment (configs/monitoring.yaml: six metrics, two of them joined from the
feedback table): the window's GROUP BY in the warehouse, the write of its statistics,
and the analysis. Reported: the median wall time, and the highest peak RSS
(``ru_maxrss``, the whole process: Python, pandas, DuckDB, scipy).

    .venv/bin/python bench/bench_abtest.py                      # 1M and 10M rows
    .venv/bin/python bench/bench_abtest.py --sizes 200000       # quick
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".aimon" / "bench"
DAY = "2026-11-01"
TAG = "AB-BENCH "

GENERATE = """
import datetime as dt, sys
from aimon.demo import seed_duckdb
seed_duckdb(sys.argv[1], days=1, rows_per_day=int(sys.argv[2]), seed=7, end=dt.date.fromisoformat(sys.argv[3]))
"""

MEASURE = """
import datetime as dt, json, resource, sys, time
from aimon.config import load_config, parse_config
from aimon.store.metrics import Store
from aimon.windows import daily_window
from aimon.tasks.abtest.analyzer import analyze_abtest
from aimon.tasks.orchestration.run import open_window
base = load_config(sys.argv[2]).model_dump(exclude={"source"})
base["warehouse"]["url"] = "duckdb:///" + sys.argv[1]
base["store"]["url"] = None
cfg = parse_config(base, source="bench")
window = daily_window(dt.date.fromisoformat(sys.argv[3]))
ctx = open_window(cfg, window, Store(cfg))
started = time.monotonic()
result = analyze_abtest(ctx)
wall = time.monotonic() - started
status = result.details["experiments"][0]["status"]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("AB-BENCH " + json.dumps({"wall": wall, "rss_mib": rss, "status": status, "figures": len(result.records)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "AIMON_WAREHOUSE_URL"}
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        path = BENCH_DIR / f"abtest-{size}.duckdb"
        path.unlink(missing_ok=True)
        subprocess.run([sys.executable, "-c", GENERATE, str(path), str(size), DAY], check=True, env=env, cwd=ROOT)
        runs = []
        for _ in range(args.repeats):
            # A fresh store each time: the statistics of the day are computed, not reused.
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    f"import duckdb; duckdb.connect('{path}').execute('DROP TABLE IF EXISTS monitoring_ab_stats')",
                ],
                check=True,
            )
            out = subprocess.run(
                [sys.executable, "-c", MEASURE, str(path), str(ROOT / "configs/monitoring.yaml"), DAY],
                check=True,
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
            ).stdout
            # DuckDB's progress bar may share the line: take what follows the tag.
            line = next(line for line in out.splitlines() if TAG in line)
            runs.append(json.loads(line.split(TAG, 1)[1]))
        rows.append(
            {
                "rows": size,
                "wall_s_median": round(statistics.median(r["wall"] for r in runs), 2),
                "peak_rss_mib": round(max(r["rss_mib"] for r in runs)),
                "status": runs[0]["status"],
                "figures": runs[0]["figures"],
            }
        )
        path.unlink(missing_ok=True)
    print("| rows | wall s (median) | peak RSS MiB | figures | demo experiment status |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['rows']:,} | {r['wall_s_median']} | {r['peak_rss_mib']} | {r['figures']} | {r['status']} |")
    (BENCH_DIR / "abtest.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
