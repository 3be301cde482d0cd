"""Calibration of CUPED in the A/B analyzer (experiments.cuped; tasks/abtest/cuped.py):
how much the interval shrinks against sqrt(1 - rho^2), whether daily looks at the
always-valid p-value keep the false-positive rate under alpha, and how many more
experiments reach a decision.

Each simulated experiment has `units` new units a day for 14 days, assigned by a fair
coin; a unit has a pre-period value x ~ N(10, 2) and an in-experiment value y with
correlation rho to it (treatment: y x (1 + effect)). Every day the analyzer's test is
run on the units so far, from their sums (aimon.stats.cuped.cuped_from_moments), and,
for comparison, the same units without the covariate (a constant x: the plain
per-unit Welch test); sequential as the analyzer (the mSPRT p-value of the lift at
each look, tau = the MDE 0.05). docs/analyses/abtest.md, "CUPED".

    nice .venv/bin/python bench/calibrate_cuped.py [--experiments 1000] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np

from aimon.stats.abtests import msprt
from aimon.stats.cuped import ArmMoments, cuped_from_moments

DAYS = 14
MDE = 0.05


def looks(rng: np.random.Generator, units: int, rho: float, effect: float) -> tuple[list[float], list[float], float]:
    """The always-valid p-value at each daily look, with and without CUPED, and the
    last look's ratio of the adjusted to the plain standard error."""
    n = units * DAYS
    x = rng.normal(10, 2, n)
    y = 20 + rho * (x - 10) * 1.5 + np.sqrt(1 - rho**2) * 3 * rng.standard_normal(n)
    treat = rng.random(n) < 0.5
    y = np.where(treat, y * (1 + effect), y)
    with_p, without_p, ratio = [], [], float("nan")
    for day in range(1, DAYS + 1):
        k = units * day
        arms = []
        plain = []
        for sel in (~treat[:k], treat[:k]):
            yy, xx = y[:k][sel], x[:k][sel]
            arms.append(ArmMoments.of(yy, xx))
            plain.append(ArmMoments.of(yy, np.ones_like(yy)))
        for moments, out in ((arms, with_p), (plain, without_p)):
            r = cuped_from_moments(moments[0], moments[1])
            out.append(msprt(r.lift, r.lift_variance, MDE * MDE).p_value)
            if moments is arms:
                ratio = r.test.se / r.unadjusted_se
    return with_p, without_p, ratio


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--experiments", type=int, default=1000, help="simulated experiments per cell")
    ap.add_argument("--units", type=int, default=300, help="new units a day")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    head = ["rho", "SE ratio (measured)", "sqrt(1 - rho^2)", "false positives, 14 daily looks"]
    head += ["+1% found by day 14: CUPED", "plain"]
    print(f"{args.experiments} experiments per row, {args.units} new units a day, alpha 0.05, tau = MDE {MDE}")
    print()
    print("| " + " | ".join(head) + " |")
    print("|---:|---:|---:|---:|---:|---:|")
    for rho in (0.0, 0.3, 0.5, 0.7, 0.9):
        ratios, false, found, found_plain = [], 0, 0, 0
        for _ in range(args.experiments):
            w, _, ratio = looks(rng, args.units, rho, 0.0)
            ratios.append(ratio)
            false += min(w) < 0.05
            w, wo, _ = looks(rng, args.units, rho, 0.01)
            found += min(w) < 0.05
            found_plain += min(wo) < 0.05
        e = args.experiments
        cells = [f"{rho:.1f}", f"{np.mean(ratios):.3f}", f"{np.sqrt(1 - rho**2):.3f}", f"{false / e:.1%}"]
        cells += [f"{found / e:.0%}", f"{found_plain / e:.0%}"]
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
