"""Calibration of performance estimation without labels (CBPE, aimon.tasks.quality.estimated):
does the estimate's 95% interval hold the realised accuracy in ~95% of windows?

An over-confident model whose truth is known, P(correct) = logistic(-0.4 + 0.7 logit(conf)),
confidences ~ Beta(6, 2); the calibration is fitted on 20,000 labelled reference rows; each
of `--windows` windows of `--rows` rows draws its labels from the truth and is estimated
from its confidences alone. Prints, per calibration method, the interval's coverage, the
estimate's mean error, the raw mean confidence's bias and the interval's mean width
(docs/analyses/quality.md, "Performance without labels").

    nice .venv/bin/python bench/calibrate_cbpe.py [--windows 500] [--rows 1500] [--seed 11]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from aimon.tasks.quality.estimated import BINS, expected_scores, fit_calibrator, intervals


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=500)
    ap.add_argument("--rows", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    print("| calibration | windows | interval coverage | mean error | raw confidence bias | mean width |")
    print("|---|---:|---:|---:|---:|---:|")
    for method in ("isotonic", "platt"):
        rng = np.random.default_rng(args.seed)

        def rows(n: int, rng: np.random.Generator = rng) -> tuple[np.ndarray, np.ndarray]:
            conf = np.clip(np.round(rng.beta(6, 2, n) * BINS) / BINS, 0.001, 0.999)
            logit = np.log(conf / (1 - conf))
            return conf, rng.random(n) < 1 / (1 + np.exp(-(-0.4 + 0.7 * logit)))

        conf, ok = rows(20_000)
        g = (
            pd.DataFrame({"b": np.rint(conf * BINS).astype(int), "c": ok})
            .groupby("b")
            .agg(n=("c", "size"), k=("c", "sum"))
        )
        cal = fit_calibrator(g.index.to_numpy(), g["n"].to_numpy(), g["k"].to_numpy(), method)
        covered, err, raw, width = 0, [], [], []
        for _ in range(args.windows):
            c, right = rows(args.rows)
            counts = pd.Series(np.rint(c * BINS).astype(int)).value_counts().sort_index()
            bins, n = counts.index.to_numpy(), counts.to_numpy()
            pred = np.full(len(bins), "yes")
            est = expected_scores(pred, cal.p[bins], n, ["yes"])["accuracy"]
            lo, hi = intervals(pred, bins, [cal], np.zeros(len(bins), int), n, ["yes"], 200, rng)["accuracy"]
            covered += lo <= right.mean() <= hi
            err.append(est - right.mean())
            raw.append(c.mean() - right.mean())
            width.append(hi - lo)
        print(
            f"| {method} | {args.windows} | {covered / args.windows:.1%} | {np.mean(err):+.4f} | "
            f"{np.mean(raw):+.3f} | {np.mean(width):.4f} |"
        )


if __name__ == "__main__":
    main()
