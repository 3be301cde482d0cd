"""Calibration of the SRM check's threshold (experiments.srm_threshold) for daily looks:
how many true 50/50 experiments page a false sample-ratio mismatch in a year, and how
soon a real break is caught.

Each simulated experiment-year has Poisson(`units`) units a day split by a fair coin;
every day the split is tested as aimon does (Pearson's chi-square on the counts since
the start and over the last 1, 3 and 7 windows, each at threshold / 4). A break is a
52/48 or a 55/45 split from its first day on; its detection day is the first window
where a 1-, 3- or 7-window span flags it. docs/analyses/abtest.md, "Sample ratio
mismatch".

    nice .venv/bin/python bench/calibrate_srm.py [--years 2000] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import chi2

SPANS = (1, 3, 7)


def p_values(a: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Pearson's chi-square p of a 50/50 split: `a` of `n` units in the first variant."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(chi2.sf((2 * a - n) ** 2 / np.maximum(n, 1), 1))


def spans(a: np.ndarray, n: np.ndarray, cumulative: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    ca, cn = np.cumsum(a, 1), np.cumsum(n, 1)
    out = [(ca, cn)] if cumulative else []
    for s in SPANS:
        out.append((ca - np.pad(ca, ((0, 0), (s, 0)))[:, :-s], cn - np.pad(cn, ((0, 0), (s, 0)))[:, :-s]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--years", type=int, default=2000, help="simulated experiment-years per cell")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    head = ["srm_threshold", "units a day", "false SRM pages per experiment-year"]
    head += ["52/48 break caught (median day)", "55/45 break caught on day 1"]
    print("| " + " | ".join(head) + " |")
    print("|---|---:|---:|---:|---:|")
    for threshold in (0.001, 0.0005, 0.0002):
        per_look = threshold / (len(SPANS) + 1)
        for units in (1500, 4300, 20000):
            n = rng.poisson(units, (args.years, 365))
            a = rng.binomial(n, 0.5)
            false = np.zeros(args.years, bool)
            for sa, sn in spans(a, n, cumulative=True):
                false |= (p_values(sa, sn) < per_look).any(1)

            def first_day(share: float, days: int = 30, units: int = units, per_look: float = per_look) -> np.ndarray:
                n = rng.poisson(units, (400, days))
                a = rng.binomial(n, share)
                first = np.full(400, days + 1)
                for sa, sn in spans(a, n, cumulative=False):
                    hit = p_values(sa, sn) < per_look
                    first = np.minimum(first, np.where(hit.any(1), hit.argmax(1) + 1, days + 1))
                return first

            print(
                f"| {threshold:g} | {units:,} | {false.mean():.3f} | {np.median(first_day(0.52)):.0f} | "
                f"{np.mean(first_day(0.55) == 1):.0%} |"
            )


if __name__ == "__main__":
    main()
