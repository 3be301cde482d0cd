"""How long loading history into Prometheus takes: `aimon export openmetrics` and
`promtool tsdb create-blocks-from openmetrics` on a year of hourly figures.

What it measures
    A DuckDB metrics table (Store.ensure()) under .aimon/bench/ is filled in SQL with
    DAYS days of hourly windows x SERIES series (SERIES/10 models x 10 endpoints, one
    metric, labels as aimon writes them); filling it is not measured. Then, once each
    (median of --repeat runs):

    export     aimon.openmetrics.write_openmetrics to a file (what the CLI runs)
    promtool   promtool tsdb create-blocks-from openmetrics FILE DIR

    It prints samples, file size, wall times and samples per second, and writes the
    figures to .aimon/bench/export.json.

How to reproduce
    nice -n 10 .venv/bin/python bench/bench_export.py                 # 365 days x 300 series
    .venv/bin/python bench/bench_export.py --days 30 --series 100     # quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aimon.config import parse_config  # noqa: E402
from aimon.store.metrics import Store  # noqa: E402
from aimon.store.openmetrics import write_openmetrics  # noqa: E402


def fill(path: Path, days: int, series: int, start: dt.date) -> int:
    import sqlalchemy as sa

    store = Store(parse_config({"warehouse": {"url": f"duckdb:///{path}"}}))
    store.ensure()
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                f"""
                INSERT INTO monitoring_metrics
                SELECT TIMESTAMP '{start}' + INTERVAL 1 HOUR * h AS window_start,
                       TIMESTAMP '{start}' + INTERVAL 1 HOUR * (h + 1) AS window_end,
                       'hourly', 'llm_requests_per_minute',
                       '{{"endpoint":"e' || (s % 10) || '","model":"m' || (s // 10) || '"}}',
                       random() * 100, 'bench', now()::TIMESTAMP
                FROM range({days * 24}) t(h), range({series}) u(s)
                """
            )
        )
        return int(conn.execute(sa.text("SELECT count(*) FROM monitoring_metrics")).scalar_one())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--series", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    out = REPO / ".aimon" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    db = out / "export-store.duckdb"
    db.unlink(missing_ok=True)
    start = dt.date(2025, 1, 1)
    rows = fill(db, args.days, args.series, start)
    store = Store(parse_config({"warehouse": {"url": f"duckdb:///{db}"}}))
    lo = dt.datetime.combine(start, dt.time())
    hi = lo + dt.timedelta(days=args.days)
    om = out / "export.om"
    export_s, promtool_s = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        with om.open("w") as fh:
            stats = write_openmetrics(store, fh, start=lo, end=hi, job="aimon")
        export_s.append(time.perf_counter() - t0)
        blocks = out / "export-blocks"
        shutil.rmtree(blocks, ignore_errors=True)
        t0 = time.perf_counter()
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(om), str(blocks)], check=True
        )
        promtool_s.append(time.perf_counter() - t0)
    assert stats.samples == rows
    fig = {
        "days": args.days,
        "series": args.series,
        "samples": rows,
        "file_mib": round(om.stat().st_size / 2**20, 1),
        "export_s_median": round(statistics.median(export_s), 2),
        "promtool_s_median": round(statistics.median(promtool_s), 2),
        "export_samples_per_s": round(rows / statistics.median(export_s)),
    }
    print(json.dumps(fig, indent=2))
    (out / "export.json").write_text(json.dumps(fig, indent=2))


if __name__ == "__main__":
    main()
