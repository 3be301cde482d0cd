"""Calibration of the cheaper-model rule (aimon.tasks.costopt.switch.compare): how often
is a cheaper model recommended when its quality is truly `--margin` worse (it must not
be: at most 2.5%, the one-sided level of a 95% interval's lower end), and how often
when it is truly as good (power), by sample size?

Each simulated endpoint: the current model's accuracy 0.85 on n labelled rows and the
candidate's on n rows, the candidate's true accuracy 0.85 x (1 + change); a second
table adds a 1-5 rating (sd 1.1, mean 4.0 x (1 + change)) that must pass too (every
shared figure must: an intersection-union test, so no correction for the two). Prints
the share of `--sims` endpoints recommended (docs/analyses/savings.md, "Calibration").

    nice .venv/bin/python bench/calibrate_switch.py [--sims 4000] [--seed 3]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from aimon.config.costopt import SwitchConfig
from aimon.tasks.costopt.switch import Evidence, compare

CHANGES = (0.0, -0.01, -0.02, -0.03, -0.05)
SIZES = (200, 1000, 5000, 20000)


def accuracy(rng: np.random.Generator, p: float, n: int) -> Evidence:
    q = rng.binomial(n, p) / n
    return Evidence(q, math.sqrt(q * (1 - q) / n), n)


def rating(rng: np.random.Generator, mean: float, n: int) -> Evidence:
    x = np.clip(np.rint(rng.normal(mean, 1.1, n)), 1, 5)
    return Evidence(float(x.mean()), float(x.std(ddof=1) / math.sqrt(n)), n)


def share(rng: np.random.Generator, change: float, n: int, sims: int, with_rating: bool, cfg: SwitchConfig) -> float:
    passed = 0
    for _ in range(sims):
        cur = {"accuracy": accuracy(rng, 0.85, n)}
        cand = {"accuracy": accuracy(rng, 0.85 * (1 + change), n)}
        if with_rating:
            cur["rating"] = rating(rng, 4.0, n)
            cand["rating"] = rating(rng, 4.0 * (1 + change), n)
        passed += compare(cur, cand, cfg)[0] == "pass"
    return passed / sims


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    cfg = SwitchConfig()
    rng = np.random.default_rng(args.seed)
    print(f"max_quality_drop {cfg.max_quality_drop:.0%}, min_sample {cfg.min_sample}; {args.sims} endpoints per cell\n")
    for with_rating in (False, True):
        print("accuracy and rating" if with_rating else "accuracy only")
        print("| true change | " + " | ".join(f"n={n:,}" for n in SIZES) + " |")
        print("|---|" + "---|" * len(SIZES))
        for change in CHANGES:
            cells = [share(rng, change, n, args.sims, with_rating, cfg) for n in SIZES]
            print(f"| {change:+.0%} | " + " | ".join(f"{c:.1%}" for c in cells) + " |", flush=True)
        print()


if __name__ == "__main__":
    main()
