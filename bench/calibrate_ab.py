"""Calibration of the A/B analysis under daily peeking (docs/benchmarks.md).

Simulates experiments looked at every day for `--days` days and analysed by the
same code the analyzer runs (aimon.tasks.abtest.looks.analyze_looks on per-day sufficient
statistics):

- A/A experiments (no effect): the share ever declared significant at any daily
  look, with the sequential test (mSPRT, the default) and with the fixed-horizon
  test looked at daily, and the fixed-horizon test looked at once, on the last day;
- A/B experiments with a true lift: the share detected by the last day (power);
- sample ratio mismatch: how often a true 50/50 split is flagged at any daily
  look, and whether a 52/48 split of 100k users is.

    python bench/calibrate_ab.py            # 500 experiments x 14 days (~1-2 min)
    python bench/calibrate_ab.py --reps 100 # quicker, noisier

The JSON copy of the figures goes to .aimon/bench/calibrate_ab.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from aimon.config.analyses import ExperimentConfig
from aimon.stats.abtests import Moments
from aimon.stats.srm import srm_test
from aimon.store.abstats import ASSIGNMENTS
from aimon.tasks.abtest.looks import analyze_looks

CASES: dict[str, dict[str, Any]] = {
    # output tokens: lognormal, coefficient of variation ~0.8; 500 requests a day
    "continuous": {"per_day": 500, "lift": 0.05, "good": "lower"},
    # a 10% rate (e.g. thumbs-down); 2,000 requests a day
    "binary": {"per_day": 2000, "lift": 0.10, "good": "lower"},
}


def experiment(kind: str, sequential: bool, mde: float) -> ExperimentConfig:
    metric = {"name": "m", "type": kind, "column": "x", "good": CASES[kind]["good"]}
    return ExperimentConfig.model_validate(
        {"name": "sim", "metrics": [metric], "sequential": sequential, "correction": "none", "mde": mde}
    )


def simulate_days(kind: str, days: int, per_day: int, lift: float, rng: np.random.Generator) -> list[dict]:
    looks = []
    for _ in range(days):
        n_t = int(rng.binomial(per_day, 0.5))
        n_c = per_day - n_t
        if kind == "continuous":
            xc = rng.lognormal(5.5, 0.7, n_c)
            xt = rng.lognormal(5.5, 0.7, n_t) * (1 + lift)
        else:
            xc = (rng.random(n_c) < 0.10).astype(float)
            xt = (rng.random(n_t) < 0.10 * (1 + lift)).astype(float)
        looks.append(
            {
                ("control", ASSIGNMENTS): Moments(n_c),
                ("treatment", ASSIGNMENTS): Moments(n_t),
                ("control", "m"): Moments.of(xc),
                ("treatment", "m"): Moments.of(xt),
            }
        )
    return looks


def significant(exp: ExperimentConfig, looks: list[dict]) -> bool:
    comp = analyze_looks(exp, looks).comparisons[0]
    return comp.p_adjusted is not None and comp.p_adjusted < exp.alpha


def calibrate(reps: int, days: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"reps": reps, "days": days, "seed": seed, "alpha": 0.05, "cases": {}}
    for kind, case in CASES.items():
        mde = case["lift"]
        seq, fixed = experiment(kind, True, mde), experiment(kind, False, mde)
        res: dict[str, Any] = {"per_day": case["per_day"], "lift": case["lift"], "mde_tau": mde}
        for label, lift in (("aa", 0.0), ("ab", case["lift"])):
            seq_any = fixed_any = fixed_last = 0
            first_days: list[int] = []
            for _ in range(reps):
                looks = simulate_days(kind, days, case["per_day"], lift, rng)
                # The sequential p-value is a running minimum: significant by day d iff
                # significant at day d's look, so the last look answers "ever".
                if significant(seq, looks):
                    seq_any += 1
                    first_days.append(next(d for d in range(1, days + 1) if significant(seq, looks[:d])))
                daily = [significant(fixed, looks[:d]) for d in range(1, days + 1)]
                fixed_any += any(daily)
                fixed_last += daily[-1]
            res[label] = {
                "sequential_daily_peeking": seq_any / reps,
                "fixed_daily_peeking": fixed_any / reps,
                "fixed_single_look": fixed_last / reps,
                "sequential_median_day": float(np.median(first_days)) if first_days else None,
            }
        out["cases"][kind] = res

    # SRM: a true 50/50 split checked daily (cumulative counts), and a 52/48 split of 100k.
    flagged = 0
    for _ in range(reps):
        counts = rng.binomial(2000, 0.5, days)
        c = np.cumsum(counts)
        t = np.cumsum(2000 - counts)
        flagged += any(srm_test([int(a), int(b)], [0.5, 0.5]).mismatch for a, b in zip(c, t, strict=True))
    broken = int(rng.binomial(100_000, 0.52))
    fair = int(rng.binomial(100_000, 0.50))
    out["srm"] = {
        "aa_flagged_daily_peeking": flagged / reps,
        "split_52_48_of_100k_p": srm_test([broken, 100_000 - broken], [0.5, 0.5]).p_value,
        "split_50_50_of_100k_p": srm_test([fair, 100_000 - fair], [0.5, 0.5]).p_value,
    }
    return out


def table(r: dict[str, Any]) -> str:
    n = r["reps"]
    se = math.sqrt(0.05 * 0.95 / n)
    lines = [
        f"{n} simulated experiments per row, looked at daily for {r['days']} days, alpha = 0.05, "
        f"seed {r['seed']} (binomial s.e. of a 5% share: {se:.1%})",
        "",
        "| metric | requests/day | true lift | sequential (mSPRT), daily looks | fixed horizon, daily looks "
        "| fixed horizon, one look on the last day |",
        "|---|---|---|---|---|---|",
    ]
    for kind, c in r["cases"].items():
        for label, lift in (("aa", 0.0), ("ab", c["lift"])):
            x = c[label]
            what = "false-positive rate" if label == "aa" else "power"
            med = (
                f" (median day {x['sequential_median_day']:.0f})"
                if label == "ab" and x["sequential_median_day"]
                else ""
            )
            lines.append(
                f"| {kind} | {c['per_day']:,} | {lift:+.0%} ({what}) | {x['sequential_daily_peeking']:.1%}{med} "
                f"| {x['fixed_daily_peeking']:.1%} | {x['fixed_single_look']:.1%} |"
            )
    s = r["srm"]
    lines += [
        "",
        f"SRM (chi-square, flagged at p < 0.001): a true 50/50 split checked daily is flagged in "
        f"{s['aa_flagged_daily_peeking']:.1%} of experiments; a 52/48 split of 100k users has "
        f"p = {s['split_52_48_of_100k_p']:.2g} (flagged), a 50/50 one p = {s['split_50_50_of_100k_p']:.2g}.",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--output", default=".aimon/bench/calibrate_ab.json")
    args = ap.parse_args()
    started = time.monotonic()
    r = calibrate(args.reps, args.days, args.seed)
    r["seconds"] = round(time.monotonic() - started, 1)
    print(table(r))
    print(f"\n({r['seconds']} s)")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
