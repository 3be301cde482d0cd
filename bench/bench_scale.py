"""The scale-out path in miniature: one day's drift and quality, unsplit on threads,
and in time segments on a Dask LocalCluster of 2 workers (orchestration.segments).

What it measures
    A DuckDB file under ``.aimon/bench/`` holds one reference day of ``--ref-rows``
    rows (default 500k) and the target day of ``--rows`` rows (default 2M), from the
    demo generator (``aimon.demo``, fixed seed, text/id/embedding columns included).
    The reference day's drift statistics are computed once, untimed, into a SQLite
    store (drift's reference reused, as in a daily schedule); each configuration
    starts from a copy of that store. Generating is not timed.

    Each configuration runs in a FRESH subprocess, as a Prefect flow against a local
    ``prefect server`` that this script starts on 127.0.0.1 (the Dask workers report
    their task runs to it), through ``aimon.tasks.orchestration.fanout.run_analyzers`` (what
    ``monitor_window`` calls) with the registry cut down to drift and quality:

        threads, 1 segment   the default: both analyzers in Prefect's thread pool
        threads, 8 segments  each analyzer reads its 8 segments one after another
        dask, 1 segment      each analyzer whole on a worker (analyze_in_worker)
        dask, 4 / 8 segments drift and quality in the flow's process, their segments
                             as Prefect tasks on the workers, merged in the flow

    The warehouse is opened read-only by every process (``?access_mode=read_only``);
    the store is SQLite. The cluster (2 worker processes, 1 thread each) is started
    before the clock starts, as a running cluster would be (``dask_address``).

    wall     run_analyzers, both analyzers concurrently (the flow's fan-out)
    driver   VmHWM of the flow's process during run_analyzers (reset just before with
             ``echo 5 > /proc/self/clear_refs``; absolute: interpreter, Prefect and
             DuckDB's buffers included)
    worker   the highest VmHWM of the 2 worker processes, reset the same way
    figures  every drift and quality figure compared with the threads/1 run: the
             largest relative difference (0 = identical)

How to reproduce
    nice -n 10 .venv/bin/python bench/bench_scale.py                 # 2M rows, ~5 min
    nice -n 10 .venv/bin/python bench/bench_scale.py --rows 500000   # quicker

    Figures go to .aimon/bench/scale.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from childproc import ROOT, child_env, emit, hwm_mib, reset_hwm
from childproc import spawn as spawn_child

BENCH_DIR = ROOT / ".aimon" / "bench"
OUT = BENCH_DIR / "scale.json"
CONFIG_YAML = ROOT / "configs" / "monitoring.yaml"
DAY = dt.date(2026, 11, 1)
SEED = 11
DEFAULT_ROWS = 2_000_000
DEFAULT_REF_ROWS = 500_000
CONFIGS = (("threads", 1), ("threads", 8), ("dask", 1), ("dask", 4), ("dask", 8))
ANALYZERS = ("drift", "quality")


def paths(rows: int) -> tuple[Path, Path]:
    return BENCH_DIR / f"scale-{rows}.duckdb", BENCH_DIR / f"scale-{rows}-store.sqlite"


def config_data(db: Path, store: Path, runner: str = "threads", segments: int = 1, address: str | None = None) -> Any:
    import yaml

    data = yaml.safe_load(CONFIG_YAML.read_text())
    data["warehouse"] = {**data["warehouse"], "url": f"duckdb:///{db}?access_mode=read_only"}
    data["store"] = {**data.get("store", {}), "url": f"sqlite:///{store}"}
    data["reference"] = {"previous_windows": 1}
    data["orchestration"] = {
        **data.get("orchestration", {}),
        "task_runner": runner,
        "segments": segments,
        "dask_address": address,
    }
    return data


# -- children ---------------------------------------------------------------------------


def run_generate(rows: int, ref_rows: int, db: Path) -> dict[str, Any]:
    import duckdb
    import numpy as np

    from aimon.demo import _append, generate_day, generate_feedback, seed_duckdb

    for stale in (db, db.with_name(db.name + ".wal")):
        stale.unlink(missing_ok=True)
    t0 = time.perf_counter()
    counts = seed_duckdb(db, days=1, rows_per_day=ref_rows, seed=SEED, end=DAY - dt.timedelta(days=1))
    rng = np.random.default_rng(SEED + 1)
    con = duckdb.connect(str(db))
    try:
        done = 0
        while done < rows:
            n = min(1_000_000, rows - done)
            chunk = generate_day(DAY, n, rng, day_offset=0, row_offset=done)
            _append(con, "interactions", chunk)
            _append(con, "feedback", generate_feedback(chunk, rng, day_offset=0))
            done += n
        con.execute("CHECKPOINT")
    finally:
        con.close()
    counts["interactions"] += rows
    return {"generation_s": time.perf_counter() - t0, "bytes": db.stat().st_size, "counts": counts}


def run_prewarm(db: Path, store: Path) -> dict[str, Any]:
    """The reference day's drift statistics into the store (untimed): a daily schedule
    computed them the day before."""
    from aimon.config import parse_config
    from aimon.store.metrics import Store
    from aimon.tasks.drift.analyzer import analyze_drift
    from aimon.tasks.orchestration.run import open_window
    from aimon.windows import daily_window

    store.unlink(missing_ok=True)
    cfg = parse_config(config_data(db, store), source="bench_scale")
    st = Store(cfg)
    st.ensure()
    result = analyze_drift(open_window(cfg, daily_window(DAY - dt.timedelta(days=1)), st))
    return {"notes": list(result.notes)}


def run_config(db: Path, store: Path, runner: str, segments: int) -> dict[str, Any]:
    from aimon.env import configure_prefect

    configure_prefect()
    from prefect import flow

    cluster = None
    address = None
    if runner == "dask":
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0")
        address = cluster.scheduler_address
    try:
        # Module-level function, small parameters: prefect-dask ships the flow run's
        # context (the flow and its parameters) to the workers.
        return flow(name="bench-scale")(bench_window)(str(db), str(store), runner, segments, address)
    finally:
        if cluster is not None:
            cluster.close()


def warm_up() -> None:
    import prefect.task_engine  # noqa: F401

    import aimon.tasks.orchestration.fanout
    import aimon.tasks.registry  # noqa: F401


def bench_window(db: str, store: str, runner: str, segments: int, address: str | None) -> dict[str, Any]:
    from aimon.config import parse_config
    from aimon.store.metrics import Store
    from aimon.tasks.orchestration.fanout import run_analyzers
    from aimon.tasks.orchestration.retries import task_options
    from aimon.tasks.orchestration.run import open_window
    from aimon.tasks.registry import ANALYZERS as REGISTRY
    from aimon.windows import daily_window

    cfg = parse_config(config_data(Path(db), Path(store), runner, segments, address), source="bench_scale")
    ctx = open_window(cfg, daily_window(DAY), Store(cfg))
    client = None
    if address is not None:
        from distributed import Client

        client = Client(address)
        client.run(warm_up)  # a running cluster has imported aimon already
        client.run(reset_hwm)
    try:
        reset_hwm()
        t0 = time.perf_counter()
        # Only the analyzers that read rows.
        outcomes = run_analyzers(cfg, ctx, task_options(cfg), {name: REGISTRY[name] for name in ANALYZERS})
        wall = time.perf_counter() - t0
        driver = hwm_mib()
        workers = list(client.run(hwm_mib).values()) if client is not None else []
    finally:
        if client is not None:
            client.close()
    return {
        "wall_s": wall,
        "driver_peak_mib": driver,
        "worker_peak_mib": workers,
        "seconds": {o.name: o.seconds for o in outcomes},
        "errors": {o.name: o.error for o in outcomes if o.error},
        "figures": [
            [r.metric, dict(r.labels), r.value] for o in outcomes if o.result is not None for r in o.result.records
        ],
        "notes": [n for o in outcomes if o.result is not None for n in o.result.notes if "segments" in n],
    }


# -- parent -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_prefect_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A local Prefect API for the children and their Dask workers (ephemeral mode
    would start one per process)."""
    port = free_port()
    env = {**scale_env(), "PREFECT_HOME": str(home), "PREFECT_SERVER_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("wb")
    prefect = Path(sys.executable).with_name("prefect")
    cmd = [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(1)
        if proc.poll() is not None:
            break
    proc.terminate()
    raise SystemExit(f"prefect server did not start; see {home / 'server.log'}")


def scale_env(api_url: str | None = None) -> dict[str, str]:
    extra = {"AIMON_HOME": os.environ.get("AIMON_HOME", str(BENCH_DIR / "home"))}
    if api_url:
        extra.update(PREFECT_API_URL=api_url, PREFECT_HOME=str(BENCH_DIR / "prefect-scale"))
    return child_env(**extra)


def spawn(*args: str, api_url: str | None = None) -> dict[str, Any]:
    return spawn_child(__file__, *args, env=scale_env(api_url), tail=5000)


def differences(base: list[Any], other: list[Any]) -> tuple[float, list[str]]:
    """The largest relative difference between two runs' figures (inf if the sets
    differ), and the metrics that differ at all."""

    def key(f: list[Any]) -> tuple[str, str]:
        return f[0], json.dumps(f[1], sort_keys=True)

    a, b = {key(f): f[2] for f in base}, {key(f): f[2] for f in other}
    if a.keys() != b.keys():
        return math.inf, sorted({k[0] for k in a.keys() ^ b.keys()})
    worst, differ = 0.0, set()
    for k, v in a.items():
        w = b[k]
        if v != w:
            worst = max(worst, abs(v - w) / max(abs(v), abs(w), 1e-300))
            differ.add(k[0])
    return worst, sorted(differ)


def print_table(runs: list[dict[str, Any]]) -> None:
    head = (
        f"{'runner':<9}{'segments':>9}{'wall s':>9}{'drift s':>9}{'quality s':>10}"
        f"{'driver MiB':>12}{'worker MiB':>12}{'figures vs threads/1':>22}"
    )
    print(head)
    print("-" * len(head))
    for r in runs:
        worker = f"{max(r['worker_peak_mib']):.0f}" if r["worker_peak_mib"] else "-"
        diff = r["max_relative_difference"]
        same = "identical" if diff == 0 else f"max rel {diff:.1e}"
        print(
            f"{r['runner']:<9}{r['segments']:>9}{r['wall_s']:>9.2f}{r['seconds'].get('drift', math.nan):>9.2f}"
            f"{r['seconds'].get('quality', math.nan):>10.2f}{r['driver_peak_mib']:>12.0f}{worker:>12}{same:>22}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows on the monitored day (default 2M)")
    p.add_argument("--ref-rows", type=int, default=DEFAULT_REF_ROWS, help="rows on the reference day (default 500k)")
    p.add_argument("--keep", action="store_true", help="keep the DuckDB file for another invocation")
    p.add_argument("--child", choices=("generate", "prewarm", "run"), help=argparse.SUPPRESS)
    p.add_argument("--runner", choices=("threads", "dask"), help=argparse.SUPPRESS)
    p.add_argument("--segments", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child == "generate":
        emit(run_generate(args.rows, args.ref_rows, args.db))
        return 0
    if args.child == "prewarm":
        emit(run_prewarm(args.db, args.store))
        return 0
    if args.child == "run":
        emit(run_config(args.db, args.store, args.runner, args.segments))
        return 0

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    db, pristine = paths(args.rows)
    if not (args.keep and db.exists()):
        print(f"generating {args.ref_rows:,} reference rows + {args.rows:,} rows on {DAY} ...", flush=True)
        gen = spawn("--child", "generate", "--rows", str(args.rows), "--ref-rows", str(args.ref_rows), "--db", str(db))
        print(f"  {gen['generation_s']:.0f} s, {gen['bytes'] / 2**20:.0f} MiB on disk", flush=True)
    spawn("--child", "prewarm", "--db", str(db), "--store", str(pristine))
    home = BENCH_DIR / "prefect-scale"
    home.mkdir(parents=True, exist_ok=True)
    server, api_url = start_prefect_server(home)
    runs: list[dict[str, Any]] = []
    try:
        for runner, segments in CONFIGS:
            store = pristine.with_name(f"scale-{args.rows}-{runner}-{segments}.sqlite")
            shutil.copyfile(pristine, store)
            print(f"{runner}, {segments} segment(s) ...", flush=True)
            res = spawn(
                "--child", "run", "--db", str(db), "--store", str(store), "--runner", runner,
                "--segments", str(segments), api_url=api_url,
            )  # fmt: skip
            store.unlink(missing_ok=True)
            res.update(runner=runner, segments=segments)
            if res["errors"]:
                raise SystemExit(f"{runner}/{segments}: analyzer failed: {res['errors']}")
            runs.append(res)
    finally:
        server.terminate()
        server.wait(timeout=60)
    base = runs[0]["figures"]
    for r in runs:
        r["max_relative_difference"], r["differing_metrics"] = differences(base, r["figures"])
        r["figure_count"] = len(r.pop("figures"))
    print()
    print(f"{args.rows:,} rows on the day; drift (3 numerical features sorted) and quality (RAG per query)")
    print_table(runs)
    out = {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows": args.rows,
        "ref_rows": args.ref_rows,
        "day": DAY.isoformat(),
        "seed": SEED,
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "runs": runs,
    }
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(f"figures written to {OUT.relative_to(ROOT)}")
    if not args.keep:
        db.unlink(missing_ok=True)
        db.with_name(db.name + ".wal").unlink(missing_ok=True)
    pristine.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
