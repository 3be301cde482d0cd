"""Calibration of the opt-in k-sample drift tests, `anderson` (Anderson-Darling, p <
0.1 as Evidently) and `es` (Epps-Singleton, p < 0.05), beside `ks` (the default test
at small n): how often each flags two samples of one distribution, and how often it
flags a mean shift, a variance change and a shape change of equal mean and variance
(aimon.stats.stattests; docs/analyses/drift.md, "Tests").

    nice .venv/bin/python bench/calibrate_ksample.py [--reps 400] [--seed 0]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

from aimon.stats import stattests as st

Draw = Callable[[np.random.Generator, int], np.ndarray]
SCENARIOS: list[tuple[str, Draw]] = [
    ("same distribution (lognormal)", lambda g, n: g.lognormal(0, 0.5, n)),
    ("mean +0.2 sd", lambda g, n: g.lognormal(0, 0.5, n) + 0.2 * 0.6),
    ("sd x1.3", lambda g, n: np.exp(0.5 * 1.3 * g.standard_normal(n))),
    # A normal against a uniform of the same mean and variance: only the shape differs.
    ("shape: normal -> uniform", lambda g, n: g.uniform(-np.sqrt(3), np.sqrt(3), n)),
]


def reference(g: np.random.Generator, n: int, scenario: str) -> np.ndarray:
    return g.standard_normal(n) if scenario.startswith("shape") else g.lognormal(0, 0.5, n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=400, help="sample pairs per cell")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    methods = ["ks", "anderson", "es"]
    print(f"share of {args.reps} sample pairs flagged (each test at its default threshold)")
    print()
    print("| scenario | n a side | " + " | ".join(methods) + " |")
    print("|---|---:|" + "---:|" * len(methods))
    for name, draw in SCENARIOS:
        for n in (100, 1000):
            flagged = dict.fromkeys(methods, 0)
            for _ in range(args.reps):
                ref, cur = reference(rng, n, name), draw(rng, n)
                for m in methods:
                    flagged[m] += st.get_stattest(m)(ref, cur).drifted
            cells = [f"{flagged[m] / args.reps:.1%}" for m in methods]
            print(f"| {name} | {n:,} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
