"""Wall time, sample sizes and peak memory of the quality analyzer on one large day.

What it measures
    One UTC day of synthetic interactions (``aimon.demo.seed_duckdb``, fixed seed and
    date) with the demo's quality columns: a response on every /summarize row and a
    reference on half of them (10% of rows), label/prediction on /chat, and
    retrieved_ids/relevant_ids as JSON text on every /rag row (30% of rows), plus the
    feedback table (10% of requests). Generating it is not measured. Then
    ``aimon.tasks.quality.analyze_quality`` runs in a fresh Python process, three times (three
    processes), with configs/monitoring.yaml pointed at the file (so quality.sample_cap
    and quality.bootstrap_iterations are the shipped defaults). Each family is also timed
    on its own in the same process after the whole run (imports then warm).

    Reported: the median wall time of the whole analyzer (cold imports of scikit-learn,
    rouge-score and sacrebleu included, as in a scheduled run), per-family times, the
    pairs scored per model against the pairs available, RAG queries evaluated, and the
    peak RSS of the child (ru_maxrss; the parent stays small so that it does not inherit).

How to reproduce
    make bench                                    # runs this after bench_run.py
    .venv/bin/python bench/bench_quality.py       # 1M rows
    .venv/bin/python bench/bench_quality.py --rows 200000

    Figures also go to .aimon/bench/quality.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(db: Path) -> dict[str, Any]:
    from aimon.env import configure_prefect

    configure_prefect()

    import yaml

    from aimon.config import parse_config
    from aimon.store.metrics import Store
    from aimon.tasks.orchestration.context import AnalysisContext
    from aimon.tasks.quality.analyzer import FAMILIES, analyze_quality
    from aimon.warehouse import Warehouse
    from aimon.windows import daily_window

    baseline = peak_rss_mib()
    data = yaml.safe_load(CONFIG_YAML.read_text())
    url = f"duckdb:///{db}"
    data["warehouse"] = {**data["warehouse"], "url": url, "feedback_table": "feedback"}
    data["store"] = {**data.get("store", {}), "url": url}
    cfg = parse_config(data, source=f"{CONFIG_YAML} (bench)")
    warehouse = Warehouse(cfg.warehouse)
    store = Store(cfg)
    store.ensure()
    ctx = AnalysisContext(cfg, daily_window(DAY), warehouse, warehouse.describe(), store)

    t0 = time.perf_counter()
    result = analyze_quality(ctx)
    wall = time.perf_counter() - t0
    families = {}
    for name, fn in FAMILIES.items():
        t = time.perf_counter()
        fn(ctx)
        families[name] = time.perf_counter() - t
    gen = result.details.get("generation", {})
    scored = {
        dict(r.labels)["model"]: int(r.value)
        for r in result.records
        if r.metric == "quality_sample_size"
        and dict(r.labels).get("metric") == "generation_bleu"
        and len(r.labels) == 2
    }
    return {
        "wall_s": wall,
        "families_warm_s": families,
        "records": len(result.records),
        "generation_pairs": gen.get("pairs"),
        "generation_scored": gen.get("scored"),
        "generation_scored_by_model": scored,
        "generation_population_by_model": gen.get("populations"),
        "rag_queries": result.details.get("rag", {}).get("queries"),
        "classification_labelled": result.details.get("classification", {}).get("labelled"),
        "feedback_rows": result.details.get("feedback", {}).get("feedback_rows"),
        "sample_cap": cfg.quality.sample_cap,
        "bootstrap_iterations": cfg.quality.bootstrap_iterations,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": peak_rss_mib(),
    }


def run_generate(rows: int, db: Path) -> dict[str, Any]:
    from aimon.demo import seed_duckdb

    for stale in (db, db.with_name(db.name + ".wal")):
        stale.unlink(missing_ok=True)
    t0 = time.perf_counter()
    counts = seed_duckdb(db, days=1, rows_per_day=rows, seed=SEED, end=DAY)
    return {"generation_s": time.perf_counter() - t0, "counts": counts}


def spawn(*args: str) -> dict[str, Any]:
    return spawn_child(__file__, *args, timeout=1800)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="quality analyzer benchmark")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--generate", type=int, help=argparse.SUPPRESS)
    p.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        emit(run_child(args.db))
        return 0
    if args.generate:
        emit(run_generate(args.generate, args.db))
        return 0

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    db = BENCH_DIR / f"quality-{args.rows}.duckdb"
    print(f"generating {args.rows:,} rows with quality columns for {DAY} ...", flush=True)
    gen = spawn("--generate", str(args.rows), "--db", str(db))
    print(f"  {gen['generation_s']:.1f} s: {gen['counts']}", flush=True)
    runs = [spawn("--child", "--db", str(db)) for _ in range(REPEATS)]
    r0 = runs[0]
    walls = [r["wall_s"] for r in runs]
    print()
    print(
        f"quality analyzer, {args.rows:,}-row day (sample_cap {r0['sample_cap']:,}, "
        f"{r0['bootstrap_iterations']:,} bootstrap resamples)"
    )
    print(
        f"  wall s (median of {REPEATS}, cold imports): {statistics.median(walls):.2f}   runs "
        + "/".join(f"{w:.2f}" for w in walls)
    )
    print(
        "  per family, warm (median): "
        + ", ".join(
            f"{k} {statistics.median(r['families_warm_s'][k] for r in runs):.2f} s" for k in r0["families_warm_s"]
        )
    )
    print(
        f"  peak RSS MiB (max): {max(r['peak_rss_mib'] for r in runs):.0f}   "
        f"baseline after imports: {statistics.median(r['baseline_rss_mib'] for r in runs):.0f}"
    )
    pops = r0["generation_population_by_model"] or {}
    print(
        f"  generation: {r0['generation_pairs']:,} (response, reference) pairs, {r0['generation_scored']:,} scored: "
        + ", ".join(f"{m} {r0['generation_scored_by_model'].get(m, 0):,}/{n:,}" for m, n in sorted(pops.items()))
    )
    print(
        f"  RAG: {r0['rag_queries']:,} queries evaluated; classification: {r0['classification_labelled']:,} "
        f"labelled rows; feedback: {r0['feedback_rows']:,} rows joined"
    )
    out = {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows": args.rows,
        "generation": gen,
        "runs": runs,
        "wall_s_median": statistics.median(walls),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
    }
    (BENCH_DIR / "quality.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"figures written to {(BENCH_DIR / 'quality.json').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
