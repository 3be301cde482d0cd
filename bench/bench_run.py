"""Wall time and peak memory of a run's warehouse-heavy parts on one large day.

What it measures
    For each size (default 1M and 10M rows) one UTC day of synthetic interactions
    (``aimon.demo.seed_duckdb``, fixed seed and date, no feedback table) is written to a
    fresh DuckDB file under ``.aimon/bench/``. Generating it is not measured. Then each
    part below runs in its own fresh Python process, three times (three processes):

    contract                   tasks.contract.check_contract
    operational                tasks.operational.analyze_operational
    cost                       tasks.cost.analyze_cost
    operational+cost (whole)   contract + operational + cost + Store.replace_window of all
                               their records: what a run does for these parts, minus
                               Prefect's orchestration (no ephemeral server is started).

    The context is built as ``aimon.tasks.orchestration.run.open_window_task`` builds it: the config is
    configs/monitoring.yaml with the warehouse and store URLs pointed at the bench file,
    then Warehouse, describe(), Store, ensure() and AnalysisContext for the daily window.
    Building it is timed separately ("setup"); "wall" is only the part itself.

    Reported per part and size: the median wall time of the three processes; the peak
    RSS of the child (``ru_maxrss``, absolute: Python, Prefect, pandas and DuckDB
    included), the highest of the three; and the child's baseline RSS right after its
    imports, so the fixed overhead of the interpreter and libraries is visible. VmHWM
    (Linux) is the same peak read from /proc/self/status, as a cross-check: a child's
    ru_maxrss starts at its parent's peak, so this script's parent process stays small
    and even the data generation runs in a subprocess of its own.
    DuckDB runs in-process, so its buffers and query memory are part of the RSS.
    The OS page cache is warm (the file was just written); DuckDB's own cache is cold
    in every process, as in a scheduled run.

How to reproduce
    make bench                                  # or: .venv/bin/python bench/bench_run.py
    .venv/bin/python bench/bench_run.py --quick             # 200k rows only
    .venv/bin/python bench/bench_run.py --sizes 1000000,10000000

    It prints a table and the issue's target check ("10M-row day, operational+cost:
    <= 15 s and <= 2 GiB"), and writes every figure to .aimon/bench/skeleton.json.
    Set nothing else: AIMON_WAREHOUSE_URL is removed from the children's environment so
    it cannot redirect the benchmark to another warehouse.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from childproc import ROOT, emit
from childproc import spawn as spawn_child

BENCH_DIR = ROOT / ".aimon" / "bench"
CONFIG_YAML = ROOT / "configs" / "monitoring.yaml"
DAY = dt.date(2026, 11, 1)
SEED = 7
REPEATS = 3
DEFAULT_SIZES = (1_000_000, 10_000_000)
QUICK_SIZES = (200_000,)
PARTS = ("contract", "operational", "cost", "operational+cost (whole)")
WHOLE = "operational+cost (whole)"
TARGET_ROWS = 10_000_000
TARGET_SECONDS = 15.0
TARGET_MIB = 2048.0
CHILD_TIMEOUT = 1800


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (Linux reports KiB).

    On Linux a child's ru_maxrss starts at its parent's peak (it is carried through
    fork/vfork and exec), so the parent of the measured processes must stay small:
    it imports nothing heavy and generates the data in a subprocess of its own.
    """
    import resource  # Unix only

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 1024 / 1024


def hwm_mib() -> float | None:
    """VmHWM: the peak RSS of this process's own address space (Linux), a cross-check
    that, unlike ru_maxrss, cannot inherit anything from the parent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# -- child: one part, one size, one process ------------------------------------------


def run_child(part: str, db: Path, day: dt.date) -> dict[str, Any]:
    from aimon.env import configure_prefect

    configure_prefect()  # before anything imports prefect (tasks.* do)

    import duckdb
    import yaml

    from aimon.config import parse_config
    from aimon.store.metrics import Store
    from aimon.tasks.contract import check_contract
    from aimon.tasks.cost import analyze_cost
    from aimon.tasks.operational import analyze_operational
    from aimon.tasks.orchestration.context import AnalysisContext
    from aimon.warehouse import Warehouse
    from aimon.windows import daily_window

    baseline = peak_rss_mib()

    t0 = time.perf_counter()
    data = yaml.safe_load(CONFIG_YAML.read_text())
    url = f"duckdb:///{db}"
    data["warehouse"] = {**data["warehouse"], "url": url, "feedback_table": None}
    data["store"] = {**data.get("store", {}), "url": url}
    cfg = parse_config(data, source=f"{CONFIG_YAML} (bench)")
    window = daily_window(day, cfg.windows.timezone)
    warehouse = Warehouse(cfg.warehouse)
    ix = warehouse.describe()
    store = Store(cfg)
    store.ensure()
    ctx = AnalysisContext(cfg, window, warehouse, ix, store)
    setup = time.perf_counter() - t0

    def contract() -> Any:
        return check_contract(warehouse, ix, window, check_null_timestamps=cfg.contract.check_null_timestamps)

    t1 = time.perf_counter()
    info: dict[str, Any] = {}
    if part == "contract":
        report = contract()
        info["accepted"] = report.accepted
    elif part == "operational":
        info["records"] = len(analyze_operational(ctx).records)
    elif part == "cost":
        info["records"] = len(analyze_cost(ctx).records)
    elif part == WHOLE:
        report = contract()
        records = [*report.records(), *analyze_operational(ctx).records, *analyze_cost(ctx).records]
        info["accepted"] = report.accepted
        info["records"] = store.replace_window(window, records, run_id="bench")
    else:
        raise SystemExit(f"unknown part {part!r}")
    wall = time.perf_counter() - t1
    return {
        "wall_s": wall,
        "setup_s": setup,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": peak_rss_mib(),
        "peak_vmhwm_mib": hwm_mib(),
        "duckdb": duckdb.__version__,
        **info,
    }


def run_generate(rows: int, db: Path, day: dt.date) -> dict[str, Any]:
    from aimon.demo import seed_duckdb

    for stale in (db, db.with_name(db.name + ".wal")):
        stale.unlink(missing_ok=True)
    t0 = time.perf_counter()
    # quality=False: these parts read no text or id columns (bench_quality.py measures those).
    counts = seed_duckdb(db, days=1, rows_per_day=rows, seed=SEED, end=day, feedback_table=None, quality=False)
    if counts["interactions"] != rows:
        raise SystemExit(f"generated {counts} rows, wanted {rows}")
    return {"generation_s": time.perf_counter() - t0, "bytes": db.stat().st_size}


# -- parent: generate, spawn, collect, print -----------------------------------------


def spawn(*args: str) -> dict[str, Any]:
    """Run this script in a fresh interpreter; return the JSON line it prints."""
    return spawn_child(__file__, *args, "--day", DAY.isoformat(), timeout=CHILD_TIMEOUT)


def summarize(part: str, rows: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "part": part,
        "rows": rows,
        "wall_s_median": statistics.median(r["wall_s"] for r in runs),
        "wall_s_runs": [r["wall_s"] for r in runs],
        "setup_s_median": statistics.median(r["setup_s"] for r in runs),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "baseline_rss_mib": statistics.median(r["baseline_rss_mib"] for r in runs),
        "peak_vmhwm_mib": max((r["peak_vmhwm_mib"] or 0.0) for r in runs) or None,
        "runs": runs,
    }


def print_table(results: list[dict[str, Any]]) -> None:
    head = f"{'part':<26} {'rows':>11} {'wall s (median)':>15} {'3 runs, s':>20} {'setup s':>8} "
    head += f"{'peak RSS MiB':>12} {'baseline MiB':>12} {'VmHWM MiB':>9}"
    print(head)
    print("-" * len(head))
    for r in results:
        runs = "/".join(f"{w:.2f}" for w in r["wall_s_runs"])
        print(
            f"{r['part']:<26} {r['rows']:>11,} {r['wall_s_median']:>15.2f} {runs:>20} {r['setup_s_median']:>8.2f} "
            f"{r['peak_rss_mib']:>12.0f} {r['baseline_rss_mib']:>12.0f} {r['peak_vmhwm_mib'] or float('nan'):>9.0f}"
        )


def target_check(results: list[dict[str, Any]]) -> dict[str, Any]:
    label = f"10M-row day, operational+cost: <= {TARGET_SECONDS:g} s and <= {TARGET_MIB / 1024:g} GiB"
    row = next((r for r in results if r["part"] == WHOLE and r["rows"] == TARGET_ROWS), None)
    if row is None:
        return {"target": label, "verdict": "NOT MEASURED", "detail": f"{TARGET_ROWS:,} rows not in --sizes"}
    ok_time = row["wall_s_median"] <= TARGET_SECONDS
    ok_mem = row["peak_rss_mib"] <= TARGET_MIB
    detail = (
        f"{row['wall_s_median']:.2f} s ({'ok' if ok_time else 'over'}), "
        f"{row['peak_rss_mib']:.0f} MiB peak RSS ({'ok' if ok_mem else 'over'})"
    )
    return {"target": label, "verdict": "PASS" if ok_time and ok_mem else "FAIL", "detail": detail}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--sizes", help="comma-separated rows per day (default: 1000000,10000000)")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_SIZES[0]:,} rows only")
    p.add_argument("--child", choices=PARTS, help=argparse.SUPPRESS)
    p.add_argument("--generate", type=int, metavar="ROWS", help=argparse.SUPPRESS)
    p.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--day", type=dt.date.fromisoformat, default=DAY, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        emit(run_child(args.child, args.db, args.day))
        return 0
    if args.generate:
        emit(run_generate(args.generate, args.db, args.day))
        return 0

    if args.quick:
        sizes = QUICK_SIZES
    elif args.sizes:
        sizes = tuple(int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip())
    else:
        sizes = DEFAULT_SIZES
    started = time.perf_counter()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    generation: dict[str, float] = {}
    for rows in sizes:
        print(f"generating {rows:,} rows for {DAY} ...", flush=True)
        db = BENCH_DIR / f"day-{rows}.duckdb"
        gen = spawn("--generate", str(rows), "--db", str(db))
        generation[str(rows)] = gen["generation_s"]
        print(f"  {gen['generation_s']:.1f} s, {gen['bytes'] / 2**20:.0f} MiB on disk", flush=True)
        for part in PARTS:
            runs = [spawn("--child", part, "--db", str(db)) for _ in range(REPEATS)]
            results.append(summarize(part, rows, runs))
            r = results[-1]
            print(f"  {part:<26} {r['wall_s_median']:7.2f} s  {r['peak_rss_mib']:6.0f} MiB", flush=True)

    print()
    print_table(results)
    check = target_check(results)
    print()
    print(f"{check['target']}: {check['verdict']} - {check['detail']}")
    total = time.perf_counter() - started
    print(f"total bench time {total:.0f} s (generation {sum(generation.values()):.0f} s)")

    out = {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "day": DAY.isoformat(),
        "seed": SEED,
        "repeats": REPEATS,
        "sizes": list(sizes),
        "machine": {
            "python": platform.python_version(),
            "duckdb": results[0]["runs"][0]["duckdb"] if results else None,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "parent_peak_rss_mib": peak_rss_mib(),  # the floor of every child's ru_maxrss
        "generation_s": generation,
        "results": results,
        "target": check,
        "total_s": total,
    }
    path = BENCH_DIR / "skeleton.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"figures written to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
