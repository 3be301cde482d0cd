"""How often do the drift defaults cry wolf, and what do they catch?

Simulates window pairs (reference and current of n rows each) with no drift and with
injected shifts, runs the same comparison the analyzer runs (aimon.tasks.drift.calculate.compare and
compare_embeddings with the default DriftConfig; the reference side goes through the
same sketch as stored reference statistics), and prints per scenario and n:
- the false-positive rate: per feature (no-drift features) and dataset-level (the
  dataset flag, share of drifted features >= 0.5) and for the embedding verdict;
- the power: how often the shifted feature (or the embeddings) is flagged.

    nice -n 10 .venv/bin/python bench/calibrate_drift.py              # the docs/benchmarks.md table
    nice -n 10 .venv/bin/python bench/calibrate_drift.py --reps 10 --n 1000 10000
    nice -n 10 .venv/bin/python bench/calibrate_drift.py --year [--shapes A B]

`--year` runs bench/drift_year.py instead: a simulated year of daily windows, window by
window, with the stored history the learned bounds learn from and the poison-proof
reference, before (fixed floors) and after (the defaults): false drifts per feature on
normal days, and whether each injected incident is caught on its first day.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aimon.config import DriftConfig
from aimon.tasks.drift.calculate import compare, compare_embeddings, stats_from_arrays
from aimon.tasks.drift.features import FeatureSpec

SCENARIOS = ("no drift", "mean +0.1σ", "mean +0.25σ", "variance ×1.5", "new category 5%", "embedding rotation 15°")
SPECS = [
    FeatureSpec("normal", "numerical"),
    FeatureSpec("lognormal", "numerical"),
    FeatureSpec("tokens", "numerical"),  # integers: many ties
    FeatureSpec("exponential", "numerical"),
    FeatureSpec("tier", "categorical"),
    FeatureSpec("language", "categorical"),
]
TARGET = {
    "mean +0.1σ": "normal",
    "mean +0.25σ": "normal",
    "variance ×1.5": "lognormal",
    "new category 5%": "language",
}
LANGS = np.array(["en", "de", "fr", "es", "ja"])
LANG_P = np.array([0.55, 0.15, 0.12, 0.13, 0.05])
EMB_DIM = 8
EMB_MEAN = np.array([1.0, 0.5, 0.3, 0, 0, 0, 0, 0])
EMB_SCALE = np.array([1.0, 0.8, 0.6, 0.5, 0.5, 0.4, 0.3, 0.3])


def window(rng: np.random.Generator, n: int, scenario: str, current: bool) -> tuple[dict, dict, np.ndarray | None]:
    shift = current and scenario
    normal = rng.standard_normal(n)
    lognormal = rng.lognormal(0.0, 0.6, n)
    if shift == "mean +0.1σ":
        normal = normal + 0.1
    elif shift == "mean +0.25σ":
        normal = normal + 0.25
    elif shift == "variance ×1.5":
        # Variance x1.5 around the same median, on the log scale of a skewed feature.
        lognormal = np.exp(np.log(lognormal) * np.sqrt(1.5))
    tokens = np.maximum(1, rng.lognormal(6.5, 0.6, n)).astype(np.int64)
    expo = rng.exponential(2.0, n)
    tier = np.array(["free", "pro", "enterprise"])[rng.choice(3, n, p=[0.6, 0.3, 0.1])]
    lang = LANGS[rng.choice(5, n, p=LANG_P)]
    if shift == "new category 5%":
        lang = np.where(rng.random(n) < 0.05, "ko", lang)
    emb = None
    if scenario in ("no drift", "embedding rotation 15°"):
        emb = EMB_MEAN + EMB_SCALE * rng.standard_normal((n, EMB_DIM))
        if shift == "embedding rotation 15°":
            a = np.deg2rad(15)
            rot = np.eye(EMB_DIM)
            rot[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
            emb = emb @ rot.T
        emb = emb.astype(np.float32)
    num = {"normal": normal, "lognormal": lognormal, "tokens": tokens, "exponential": expo}
    return num, {"tier": tier, "language": lang}, emb


@dataclass
class Tally:
    reps: int = 0
    feature_fp: int = 0  # no-drift features flagged
    feature_tests: int = 0
    dataset: int = 0  # dataset flag raised
    target: int = 0  # the shifted feature flagged
    emb: int = 0  # embedding verdict raised
    emb_mmd: int = 0  # MMD alone (p < alpha)
    emb_reps: int = 0


def run(ns: list[int], reps: dict[int, int], seed: int = 0, scenarios: tuple[str, ...] = SCENARIOS) -> dict:
    cfg = DriftConfig()
    out: dict[tuple[str, int], Tally] = {}
    for n in ns:
        for k, scenario in enumerate(scenarios):
            t = Tally()
            rng = np.random.default_rng([seed, n, k])
            for _ in range(reps[n]):
                rn, rc, re = window(rng, n, scenario, current=False)
                cn, cc, ce = window(rng, n, scenario, current=True)
                ref = stats_from_arrays(rn, rc, sketch_size=cfg.sketch_size)
                cur = stats_from_arrays(cn, cc)
                report = compare(ref, cur, SPECS, cfg)
                target = TARGET.get(scenario)
                t.reps += 1
                t.dataset += report.dataset_drift
                for f in report.features:
                    if f.feature == target:
                        t.target += f.detected
                    else:
                        t.feature_tests += 1
                        t.feature_fp += f.detected
                if re is not None and ce is not None:
                    res, drifted, _ = compare_embeddings(re, ce, cfg)
                    t.emb_reps += 1
                    t.emb += drifted
                    t.emb_mmd += any(r.method == "mmd" and r.drifted for r in res)
            out[(scenario, n)] = t
    return out


def table(results: dict) -> str:
    lines = [
        "| scenario | n a side | reps | feature FPR | dataset FPR | power (shifted feature) "
        "| embedding flag | MMD p<0.05 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (scenario, n), t in results.items():
        target = f"{t.target / t.reps:.0%}" if scenario in TARGET else "-"
        emb = f"{t.emb / t.emb_reps:.0%}" if t.emb_reps else "-"
        mmd = f"{t.emb_mmd / t.emb_reps:.0%}" if t.emb_reps else "-"
        dataset = f"{t.dataset / t.reps:.1%}"
        lines.append(
            f"| {scenario} | {n:,} | {t.reps} | {t.feature_fp / max(t.feature_tests, 1):.1%} | {dataset} "
            f"| {target} | {emb} | {mmd} |"
        )
    return "\n".join(lines)


def year(shapes: list[str], seed: int) -> int:
    """The year table; exit status 1 if the defaults drift more than once a year on
    normal days or miss an incident's first day, for any shape."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import drift_year as y  # only --year needs it

    t0 = time.perf_counter()
    results = {}
    for shape in shapes:
        for verdict, cfg in (("before", y.old_config()), ("defaults", y.new_config())):
            results[(shape, verdict)] = y.run_year(y.SHAPES[shape], cfg, seed)
    print(y.year_table(results))
    bad = [
        shape
        for (shape, verdict), r in results.items()
        if verdict == "defaults"
        and (sum(r.false_by_feature.values()) + r.false_embedding > 1 or not all(r.caught.values()))
    ]
    print(f"\n{time.perf_counter() - t0:.0f} s" + (f"; over the bound: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument(
        "--reps", type=int, nargs="+", default=None, help="repetitions per cell, one per n (default 100 50 20)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--year", action="store_true", help="a simulated year of daily windows (bench/drift_year.py)")
    ap.add_argument("--shapes", nargs="+", default=["A", "B"], help="--year: the generators to run")
    args = ap.parse_args()
    if args.year:
        sys.exit(year(args.shapes, args.seed))
    default = {1000: 100, 10_000: 50, 100_000: 20}
    given = args.reps or []
    reps = {n: given[min(i, len(given) - 1)] if given else default.get(n, 20) for i, n in enumerate(args.n)}
    t0 = time.perf_counter()
    results = run(args.n, reps, args.seed)
    print(table(results))
    worst = max(t.dataset / t.reps for (s, _), t in results.items() if s == "no drift")
    print(f"\nworst dataset-level FPR under no drift: {worst:.1%} (bound 5%); {time.perf_counter() - t0:.0f} s")
    sys.exit(0 if worst <= 0.05 else 1)


if __name__ == "__main__":
    main()
