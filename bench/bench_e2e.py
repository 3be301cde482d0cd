"""A whole run of one big day, end to end: wall time and peak RSS, whole and per part.

What it measures
    For each size (default 1M and 10M rows) a fresh DuckDB file under ``.aimon/bench/``
    holds 8 UTC days of synthetic interactions and feedback (``aimon.demo``, fixed seed,
    text/id columns included, so quality has work): 7 reference days of ``--ref-rows``
    rows each (default 1M; the drift, quality and A/B analyzers need them) and the
    target day of SIZE rows, which carries the demo's incidents. Generating is not timed.

    The 7 reference days are then run once, untimed, in one subprocess (the same plain
    path as below), so the store holds their figures and drift's reference sketches.

    Then the target day runs in a FRESH subprocess along the plain-function path the
    flow ``monitor_window`` uses, part by part, sequentially:

        imports        aimon, tasks.*, prefect, duckdb, pandas ... (what a run imports)
        begin_run      config, Store.ensure, the run row and window claim
        open_window    tasks.run.open_window (Warehouse, describe)
        contract       tasks.contract.check_contract
        <analyzer>     each entry of tasks/registry.py, via tasks.run.run_analyzer
        publish        tasks.run.publish (replace_window of every figure, finish_run)
        push           tasks.prometheus.publish_to_pushgateway (no gateway configured:
                       a historical window is never pushed, so this is near zero)
        alerts         tasks.alerts.alert_window (evaluate rules, store state, no send)
        whole          begin_run .. alerts, i.e. the run minus Prefect and imports

    With ``--threads`` a second fresh process runs the same day with every analyzer
    submitted at once to a thread pool, as the flow does (tasks/fanout.py), reported as
    "analyzers (threads)" and "whole (threads)".

    Optionally (``--cli``) the real ``aimon run --date D`` in a subprocess: Prefect's
    ephemeral server start, the flow, its threads fan-out, everything; timed from the
    outside, reported as its own row.

    Peak RSS per part: before each part the child resets its high-water mark
    (``echo 5 > /proc/self/clear_refs``) and reads VmHWM from /proc/self/status after
    it, so each part's peak is its own (absolute, the interpreter and libraries
    included). ru_maxrss is not used: a child's starts at its parent's peak across
    fork+exec. The CLI row's peak is ``wait4``'s ru_maxrss of that child (this parent
    stays small, so the inheritance is negligible; see parent_peak_rss_mib in the JSON).
    DuckDB runs in-process, so its buffers count. OS page cache warm, DuckDB cold.

How to reproduce
    make bench                                           # runs it with --threads --cli
    nice -n 10 .venv/bin/python bench/bench_e2e.py --threads --cli   # 1M and 10M, ~8 min
    nice -n 10 .venv/bin/python bench/bench_e2e.py --sizes 10000000 --cli

    Figures go to .aimon/bench/e2e.json (one key per size, merged across invocations).
    Targets checked (issue 9): 10M-row day end to end <= 60 s and <= 4 GiB peak RSS;
    cost linear in rows (10M within 12x of 1M).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".aimon" / "bench"
OUT = BENCH_DIR / "e2e.json"
CONFIG_YAML = ROOT / "configs" / "monitoring.yaml"
DAY = dt.date(2026, 11, 1)
SEED = 7
REF_DAYS = 7
DEFAULT_SIZES = (1_000_000, 10_000_000)
DEFAULT_REF_ROWS = 1_000_000
TARGET_ROWS = 10_000_000
TARGET_SECONDS = 60.0
TARGET_MIB = 4096.0
LINEAR_FACTOR = 12.0
RESULT_TAG = "BENCH-RESULT "
CHILD_TIMEOUT = 3600


def hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def bench_config_data(db: Path) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(CONFIG_YAML.read_text())
    url = f"duckdb:///{db}"
    data["warehouse"] = {**data["warehouse"], "url": url}
    data["store"] = {**data.get("store", {}), "url": url}
    return data  # type: ignore[no-any-return]


# -- children ---------------------------------------------------------------------------


def run_generate(size: int, ref_rows: int, db: Path, day: dt.date) -> dict[str, Any]:
    """7 reference days of ref_rows and the target day of size rows, as seed_duckdb
    writes them (same generator, incidents of day_offset 0 on the target day)."""
    import duckdb
    import numpy as np

    from aimon.demo import _append, generate_day, generate_feedback, seed_duckdb

    for stale in (db, db.with_name(db.name + ".wal")):
        stale.unlink(missing_ok=True)
    t0 = time.perf_counter()
    # The reference days: seed_duckdb's own loop (day offsets 6..0 of its run; the
    # incidents it injects at offset 0 land on the last reference day).
    counts = seed_duckdb(db, days=REF_DAYS, rows_per_day=ref_rows, seed=SEED, end=day - dt.timedelta(days=1))
    rng = np.random.default_rng(SEED + 1)
    con = duckdb.connect(str(db))
    try:
        done = 0
        while done < size:
            n = min(2_000_000, size - done)
            chunk = generate_day(day, n, rng, day_offset=0, row_offset=done)
            _append(con, "interactions", chunk)
            fb = generate_feedback(chunk, rng, day_offset=0)
            _append(con, "feedback", fb)
            counts["interactions"] += n
            counts["feedback"] += fb.num_rows
            done += n
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return {"generation_s": time.perf_counter() - t0, "bytes": db.stat().st_size, "counts": counts}


def run_day(db: Path, day: dt.date, *, threads: bool = False) -> dict[str, Any]:
    """One daily window along the flow's plain-function path, part by part."""
    t_import = time.perf_counter()
    reset_ok = reset_hwm()
    from aimon.env import configure_prefect

    configure_prefect()

    import duckdb

    from aimon.config import parse_config
    from aimon.store import Store
    from aimon.windows import daily_window
    from tasks.alerts import alert_window
    from tasks.contract import check_contract
    from tasks.prometheus import publish_to_pushgateway
    from tasks.registry import ANALYZERS
    from tasks.run import AnalyzerOutcome, begin_run, open_window, publish, run_analyzer

    parts: list[dict[str, Any]] = []
    parts.append({"part": "imports", "wall_s": time.perf_counter() - t_import, "peak_mib": hwm_mib()})
    info: dict[str, Any] = {}

    def timed(name: str, fn: Any) -> Any:
        reset_hwm()
        start_rss = rss_mib()
        t0 = time.perf_counter()
        out = fn()
        parts.append(
            {"part": name, "wall_s": time.perf_counter() - t0, "peak_mib": hwm_mib(), "start_rss_mib": start_rss}
        )
        return out

    whole_t0 = time.perf_counter()
    whole_hwm_reset = reset_hwm()
    cfg = parse_config(bench_config_data(db), source=f"{CONFIG_YAML} (bench)")
    window = daily_window(day, cfg.windows.timezone)
    store = Store(cfg)
    run = timed("begin_run", lambda: begin_run(store, window, None, notify=False, redo="all"))
    ctx = timed("open_window", lambda: open_window(cfg, window, store))
    contract = timed(
        "contract",
        lambda: check_contract(
            ctx.warehouse, ctx.interactions, window, check_null_timestamps=cfg.contract.check_null_timestamps
        ),
    )
    outcomes: list[AnalyzerOutcome] = []
    if threads:
        # As the flow runs them (tasks/fanout.py: every analyzer submitted at once to
        # Prefect's thread pool), here on a plain ThreadPoolExecutor.
        from concurrent.futures import ThreadPoolExecutor

        def all_at_once() -> list[AnalyzerOutcome]:
            with ThreadPoolExecutor(max_workers=len(ANALYZERS)) as pool:
                futures = {name: pool.submit(run_analyzer, name, ctx) for name in ANALYZERS}
                done = []
                for name, fut in futures.items():
                    try:
                        res = fut.result()
                        done.append(AnalyzerOutcome(name, res, None, res.seconds))
                    except Exception as err:
                        done.append(AnalyzerOutcome(name, None, repr(err), 0.0))
                return done

        outcomes = timed("analyzers (threads)", all_at_once)
        info["analyzer_seconds_in_threads"] = {o.name: o.seconds for o in outcomes}
    else:
        for name in ANALYZERS:
            t0 = time.perf_counter()
            try:
                result = timed(name, lambda name=name: run_analyzer(name, ctx))  # type: ignore[misc]
                outcomes.append(AnalyzerOutcome(name, result, None, time.perf_counter() - t0))
            except Exception as err:  # the flow records a failed analyzer and goes on
                wall = time.perf_counter() - t0
                parts.append({"part": name, "wall_s": wall, "peak_mib": hwm_mib(), "error": repr(err)})
                outcomes.append(AnalyzerOutcome(name, None, repr(err), wall))
    summary = timed("publish", lambda: publish(store, run, contract, outcomes))
    summary = timed("push", lambda: publish_to_pushgateway(cfg, store, summary))
    report = timed("alerts", lambda: alert_window(cfg, store, window, run.run_id, send=run.notify))
    whole = time.perf_counter() - whole_t0
    # The whole's peak is the highest part peak (each part reset the mark).
    peak_whole = max(p["peak_mib"] for p in parts if p["part"] != "imports")
    parts.append({"part": "whole", "wall_s": whole, "peak_mib": peak_whole})
    info.update(
        status=summary.status,
        accepted=contract.accepted,
        records=len(summary.records),
        firing=list(report.firing),
        errors={o.name: o.error for o in outcomes if o.error},
        clear_refs=reset_ok and whole_hwm_reset,
        duckdb=duckdb.__version__,
    )
    return {"parts": parts, **info}


# -- parent -----------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("AIMON_WAREHOUSE_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def spawn(*args: str) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    proc = subprocess.run(
        cmd, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"child {' '.join(args)} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len(RESULT_TAG) :])  # type: ignore[no-any-return]


def run_cli(db: Path, day: dt.date) -> dict[str, Any]:
    """`aimon run --date D` as a user runs it; wall from outside, peak from wait4."""
    import yaml

    cfg_path = db.with_suffix(".yaml")
    cfg_path.write_text(yaml.safe_dump(bench_config_data(db), sort_keys=False))
    aimon = Path(sys.executable).with_name("aimon")
    log = db.with_suffix(".cli.log")
    with log.open("w") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [str(aimon), "run", "--config", str(cfg_path), "--date", day.isoformat(), "--no-notify"],
            cwd=ROOT,
            env=child_env(),
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
        # wait4, not communicate: its rusage is this child's (and its reaped children's) alone.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = log.read_text()
    return {
        "wall_s": wall,
        "peak_mib": usage.ru_maxrss / 1024,
        "exit": proc.returncode,
        "output_tail": out.splitlines()[-15:],
    }


def parent_peak_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_table(results: dict[str, Any]) -> None:
    sizes = sorted(results, key=int)
    names: list[str] = []
    for s in sizes:
        for p in results[s]["parts"]:
            if p["part"] not in names:
                names.append(p["part"])
    for s in sizes:
        for extra in ("analyzers (threads)", "whole (threads)"):
            if results[s].get("threads") and extra not in names:
                names.append(extra)
    for s in sizes:
        if results[s].get("cli") and "aimon run (CLI)" not in names:
            names.append("aimon run (CLI)")
    head = f"{'part':<18}" + "".join(
        f"{f'{int(s) / 1e6:g}M wall s':>14}{f'{int(s) / 1e6:g}M peak MiB':>15}" for s in sizes
    )
    print(head)
    print("-" * len(head))
    for name in names:
        row = f"{name:<18}"
        for s in sizes:
            p = next((x for x in results[s]["parts"] if x["part"] == name), None)
            if name == "aimon run (CLI)":
                p = results[s].get("cli")
            elif name.endswith("(threads)") and results[s].get("threads"):
                key = "whole" if name == "whole (threads)" else name
                p = next((x for x in results[s]["threads"]["parts"] if x["part"] == key), None)
            if p is None:
                row += f"{'-':>14}{'-':>15}"
            else:
                row += f"{p['wall_s']:>14.2f}{p['peak_mib']:>15.0f}"
        print(row)


def target_check(results: dict[str, Any]) -> list[dict[str, str]]:
    checks = []
    big = results.get(str(TARGET_ROWS))
    label = f"10M-row day end to end <= {TARGET_SECONDS:g} s and <= {TARGET_MIB / 1024:g} GiB"
    if big is None:
        checks.append({"target": label, "verdict": "NOT MEASURED", "detail": "10M not in --sizes"})
    else:
        whole = next(p for p in big["parts"] if p["part"] == "whole")
        imports = next(p for p in big["parts"] if p["part"] == "imports")
        wall = whole["wall_s"] + imports["wall_s"]
        ok = wall <= TARGET_SECONDS and whole["peak_mib"] <= TARGET_MIB
        detail = f"plain path, sequential, incl. imports {wall:.1f} s, peak {whole['peak_mib']:.0f} MiB"
        if big.get("threads"):
            tw = next(p for p in big["threads"]["parts"] if p["part"] == "whole")
            ti = next(p for p in big["threads"]["parts"] if p["part"] == "imports")
            twall = tw["wall_s"] + ti["wall_s"]
            detail += f"; analyzers in threads as the flow runs them {twall:.1f} s, peak {tw['peak_mib']:.0f} MiB"
            ok = twall <= TARGET_SECONDS and tw["peak_mib"] <= TARGET_MIB
        if big.get("cli"):
            cli = big["cli"]
            ok = ok and cli["wall_s"] <= TARGET_SECONDS and cli["peak_mib"] <= TARGET_MIB
            detail += f"; aimon run (CLI) {cli['wall_s']:.1f} s, peak {cli['peak_mib']:.0f} MiB"
        checks.append({"target": label, "verdict": "PASS" if ok else "FAIL", "detail": detail})
    small = results.get("1000000")
    label = f"cost linear: 10M within {LINEAR_FACTOR:g}x of 1M (whole, plain path)"
    if big is None or small is None:
        checks.append({"target": label, "verdict": "NOT MEASURED", "detail": "need both 1M and 10M"})
    else:

        def whole_s(r: dict[str, Any]) -> float:
            return float(next(p for p in r["parts"] if p["part"] == "whole")["wall_s"])

        ratio = whole_s(big) / whole_s(small)
        checks.append(
            {"target": label, "verdict": "PASS" if ratio <= LINEAR_FACTOR else "FAIL", "detail": f"ratio {ratio:.1f}x"}
        )
    return checks


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--sizes", help="comma-separated target-day rows (default: 1000000,10000000)")
    p.add_argument("--ref-rows", type=int, default=DEFAULT_REF_ROWS, help="rows per reference day (default 1M)")
    p.add_argument("--cli", action="store_true", help="also time `aimon run --date D` (Prefect included)")
    p.add_argument("--threads", action="store_true", help="also run the analyzers concurrently, as the flow does")
    p.add_argument("--child", choices=("generate", "reference", "target"), help=argparse.SUPPRESS)
    p.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    p.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child == "generate":
        print(RESULT_TAG + json.dumps(run_generate(args.rows, args.ref_rows, args.db, DAY)), flush=True)
        return 0
    if args.child == "reference":
        runs = [run_day(args.db, DAY - dt.timedelta(days=k)) for k in range(REF_DAYS, 0, -1)]
        print(RESULT_TAG + json.dumps({"statuses": [r["status"] for r in runs]}), flush=True)
        return 0
    if args.child == "target":
        print(RESULT_TAG + json.dumps(run_day(args.db, DAY, threads=args.threads)), flush=True)
        return 0

    sizes = tuple(int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()) if args.sizes else DEFAULT_SIZES
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    previous = json.loads(OUT.read_text()) if OUT.exists() else {}
    results: dict[str, Any] = previous.get("results", {})
    for size in sizes:
        db = BENCH_DIR / f"e2e-{size}.duckdb"
        print(f"generating {REF_DAYS} x {args.ref_rows:,} reference rows + {size:,} rows on {DAY} ...", flush=True)
        gen = spawn("--child", "generate", "--rows", str(size), "--ref-rows", str(args.ref_rows), "--db", str(db))
        print(f"  {gen['generation_s']:.0f} s, {gen['bytes'] / 2**20:.0f} MiB on disk", flush=True)
        t0 = time.perf_counter()
        ref = spawn("--child", "reference", "--db", str(db))
        print(f"  reference days run (untimed): {time.perf_counter() - t0:.0f} s, {ref['statuses']}", flush=True)
        res = spawn("--child", "target", "--db", str(db))
        res.update(size=size, ref_rows=args.ref_rows, ref_days=REF_DAYS, generation=gen)
        for p in res["parts"]:
            print(f"  {p['part']:<14} {p['wall_s']:8.2f} s {p['peak_mib']:8.0f} MiB {p.get('error', '')}", flush=True)
        print(f"  status {res['status']}, {res['records']} figures, firing {len(res['firing'])}", flush=True)
        if args.threads:
            thr = spawn("--child", "target", "--db", str(db), "--threads")
            res["threads"] = thr
            for p in thr["parts"]:
                if p["part"] in ("analyzers (threads)", "whole"):
                    print(f"  threads: {p['part']:<20} {p['wall_s']:8.2f} s {p['peak_mib']:8.0f} MiB", flush=True)
            print(f"  threads: per analyzer {thr['analyzer_seconds_in_threads']}", flush=True)
        if args.cli:
            res["cli"] = run_cli(db, DAY)
            print(f"  aimon run (CLI) {res['cli']['wall_s']:.2f} s {res['cli']['peak_mib']:.0f} MiB", flush=True)
        elif results.get(str(size), {}).get("cli"):
            res["cli"] = results[str(size)]["cli"]  # kept from an earlier --cli invocation
            res["cli"]["from_earlier_invocation"] = True
        results[str(size)] = res
        db.unlink(missing_ok=True)
        db.with_name(db.name + ".wal").unlink(missing_ok=True)

    print()
    print_table(results)
    checks = target_check(results)
    print()
    for c in checks:
        print(f"{c['target']}: {c['verdict']} - {c['detail']}")
    out = {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "day": DAY.isoformat(),
        "seed": SEED,
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "parent_peak_rss_mib": parent_peak_mib(),
        "results": results,
        "targets": checks,
    }
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(f"figures written to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
