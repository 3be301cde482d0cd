"""How long `aimon report` takes on a year of daily windows, how big its pages get, and
what `report.after_run` adds to a run.

What it measures
    A real demo store first: DEMO_DAYS demo days seeded into DuckDB (aimon.demo) and each
    monitored by the real monitor_window flow (Prefect's test harness), so every analyzer's
    figures, the runs, the alert events and drift's stored sketches are the demo's own.
    Then the store is stretched to WINDOWS daily windows *synthetically*: the last real
    window's figures (every metric and label set), its run row and its alert events are
    copied to each earlier day with shifted dates, values times lognormal noise (sigma
    0.05; 0/1 flags, decision codes and counts of zero kept as they are), alert events on
    one window in seven. The last DEMO_DAYS windows stay the real ones (so the drift
    distributions read the real sketches). Not measured: seeding, the runs, the copy.

    full       build_report(cfg): every page (overview, concern pages, a page per window)
    after_run  build_report(cfg, only_window=last): what report.after_run does after a run
               (the run's page and its neighbours', the overview, the concern pages),
               at WINDOWS windows and at the demo's DEMO_DAYS windows; timed after one
               untimed build in the same process, as in a run, whose store engine is open

    Median of --repeat builds each; largest page in bytes. Figures in .aimon/bench/report.json.

How to reproduce
    make bench-report                                   # 365 windows (~2 min with the demo runs)
    .venv/bin/python bench/bench_report.py --windows 60 --repeat 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("AIMON_HOME", str(REPO / ".aimon" / "bench" / "report-home"))

from aimon.env import configure_prefect  # noqa: E402

configure_prefect()

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from aimon.config import load_config  # noqa: E402
from aimon.demo import seed_duckdb  # noqa: E402
from aimon.report import build_report  # noqa: E402

DEMO_DAYS = 10
END = dt.date(2026, 11, 20)
KEEP = {"ab_status", "ab_metric_status", "ab_srm_detected", "ab_regression_detected", "monitoring_run_success"}


def demo_store(work: Path, rows_per_day: int) -> Path:
    from prefect.testing.utilities import prefect_test_harness

    from aimon.flows.monitor import monitor_window

    db = work / "wh.duckdb"
    seed_duckdb(db, days=DEMO_DAYS, rows_per_day=rows_per_day, seed=7, end=END)
    data = yaml.safe_load((REPO / "configs" / "monitoring.yaml").read_text())
    data["warehouse"] = {**data["warehouse"], "url": f"duckdb:///{db}"}
    cfg = work / "monitoring.yaml"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    with prefect_test_harness(server_startup_timeout=180):
        for o in range(DEMO_DAYS - 1, -1, -1):
            monitor_window(window_start=(END - dt.timedelta(days=o)).isoformat(), config_path=str(cfg), notify=False)
    return cfg


def stretch(db: Path, windows: int, seed: int = 0) -> None:
    """Copy the last real window's figures, run and alert events to the days before the
    real ones, down to `windows` windows in all."""
    rng = np.random.default_rng(seed)
    last = dt.datetime.combine(END, dt.time())
    con = duckdb.connect(str(db))
    try:
        figs = con.execute(
            "SELECT metric, labels, value, run_id FROM monitoring_metrics WHERE window_start = ?", [last]
        ).fetchall()
        run = con.execute("SELECT * FROM monitoring_runs WHERE window_start = ?", [last]).fetchall()[-1]
        run_cols = [d[0] for d in con.execute("SELECT * FROM monitoring_runs LIMIT 0").description]
        events = con.execute("SELECT * FROM monitoring_alert_events WHERE window_start = ?", [last]).fetchall()
        ev_cols = [d[0] for d in con.execute("SELECT * FROM monitoring_alert_events LIMIT 0").description]
        rows, runs, evs = [], [], []
        for i in range(DEMO_DAYS, windows):
            start = last - dt.timedelta(days=i)
            end = start + dt.timedelta(days=1)
            for metric, labels, value, _ in figs:
                keep = metric in KEEP or value in (0.0, 1.0)
                v = value if keep else float(value * rng.lognormal(0.0, 0.05))
                rows.append((start, end, "daily", metric, labels, v, f"synth{i}", end))
            r = dict(zip(run_cols, run, strict=True))
            r.update(run_id=f"synth{i}", window_start=start, window_end=end, flow_run_id=None)
            runs.append(tuple(r[c] for c in run_cols))
            if i % 7 == 0:
                for e in events:
                    d = dict(zip(ev_cols, e, strict=True))
                    d.update(window_start=start, window_end=end, run_id=f"synth{i}", active_since=start)
                    evs.append(tuple(d[c] for c in ev_cols))
        cols = ["window_start", "window_end", "granularity", "metric", "labels", "value", "run_id", "computed_at"]
        synth = pd.DataFrame(rows, columns=cols)  # one bulk insert: executemany is row by row
        con.register("synth", synth)
        con.execute("INSERT INTO monitoring_metrics SELECT * FROM synth")
        con.executemany(f"INSERT INTO monitoring_runs VALUES ({', '.join('?' * len(run_cols))})", runs)
        if evs:
            con.executemany(f"INSERT INTO monitoring_alert_events VALUES ({', '.join('?' * len(ev_cols))})", evs)
    finally:
        con.close()


def timed(cfg_path: Path, out: Path, repeat: int, only_last: bool) -> tuple[float, int, int]:
    from aimon.windows import daily_window

    cfg = load_config(str(cfg_path))
    seconds, largest, pages = [], 0, 0
    if only_last:  # as in a run: the store's engine is open and DuckDB imported already
        build_report(cfg, output=out, only_window=daily_window(END))
    for _ in range(repeat):
        res = build_report(cfg, output=out, only_window=daily_window(END) if only_last else None)
        seconds.append(res.seconds)
        largest, pages = max(p.stat().st_size for p in out.rglob("*.html")), res.pages
    return statistics.median(seconds), largest, pages


def _child(*args: str) -> dict[str, float]:
    """One phase in a fresh process: a DuckDB file opens in one mode per process, and the
    demo's runs, the copy and each measurement must not share one."""
    res = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=365)
    ap.add_argument("--rows-per-day", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--phase", choices=["demo", "stretch", "full", "after"], help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:  # a child
        work = Path(args.work)
        if args.phase == "demo":
            demo_store(work, args.rows_per_day)
            print("{}")
        elif args.phase == "stretch":
            stretch(work / "wh.duckdb", args.windows)
            print("{}")
        else:
            sec, largest, pages = timed(work / "monitoring.yaml", work / "site", args.repeat, args.phase == "after")
            print(json.dumps({"seconds": sec, "largest": largest, "pages": pages}))
        return
    bench = REPO / ".aimon" / "bench"
    bench.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="report-", dir=bench))
    common = ["--work", str(work), "--repeat", str(args.repeat), "--windows", str(args.windows)]
    try:
        _child("--phase", "demo", "--rows-per-day", str(args.rows_per_day), *common)
        small = _child("--phase", "full", *common)
        small_after = _child("--phase", "after", *common)
        _child("--phase", "stretch", *common)
        shutil.rmtree(work / "site")
        full = _child("--phase", "full", *common)
        after = _child("--phase", "after", *common)
        figures = {
            "windows": args.windows,
            "full_seconds": round(full["seconds"], 3),
            "full_pages": full["pages"],
            "largest_page_bytes": full["largest"],
            "after_run_seconds": round(after["seconds"], 3),
            "after_run_pages": after["pages"],
            "demo_windows": DEMO_DAYS,
            "demo_full_seconds": round(small["seconds"], 3),
            "demo_after_run_seconds": round(small_after["seconds"], 3),
        }
        print(
            f"{args.windows} daily windows: full report {full['seconds']:.2f} s ({full['pages']} pages, largest "
            f"{full['largest'] / 1e6:.2f} MB); after_run {after['seconds']:.2f} s ({after['pages']} pages)\n"
            f"{DEMO_DAYS} demo windows: full report {small['seconds']:.2f} s; after_run {small_after['seconds']:.2f} s"
        )
        (bench / "report.json").write_text(json.dumps(figures, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
