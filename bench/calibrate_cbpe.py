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

from aimon.tasks.quality.estimated import BINS, error_mix, expected_scores, fit_calibrator, intervals

LABELS = ["a", "b", "c"]
STABLE = {"a": [0, 0.8, 0.2], "b": [0.6, 0, 0.4], "c": [0.5, 0.5, 0]}
CHANGED = {"a": [0, 0.2, 0.8], "b": [0.1, 0, 0.9], "c": [0.9, 0.1, 0]}


def multiclass(rng: np.random.Generator, n: int, mix: dict[str, list[float]]) -> tuple[np.ndarray, ...]:
    """Three classes predicted 50/30/20%, P(correct) = conf^1.5, and a wrong
    prediction's true class drawn from mix[prediction]."""
    pred = rng.choice(LABELS, n, p=[0.5, 0.3, 0.2])
    conf = np.clip(np.round(rng.beta(5, 2, n) * BINS) / BINS, 0.001, 0.999)
    ok = rng.random(n) < conf**1.5
    label = pred.copy()
    for a in LABELS:
        off = (pred == a) & ~ok
        label[off] = rng.choice(LABELS, int(off.sum()), p=mix[a])
    return pred, conf, label


def multiclass_table(windows: int, rows: int, seed: int) -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(seed)
    pred, conf, label = multiclass(rng, 20_000, STABLE)
    b = np.rint(conf * BINS).astype(int)
    g = pd.DataFrame({"b": b, "c": pred == label}).groupby("b").agg(n=("c", "size"), k=("c", "sum"))
    cal = fit_calibrator(g.index.to_numpy(), g["n"].to_numpy(), g["k"].to_numpy(), "isotonic")
    e = pd.DataFrame({"p": pred, "l": label}).groupby(["p", "l"]).size().reset_index(name="n")
    mix = error_mix(e["p"].to_numpy(), e["l"].to_numpy(), e["n"].to_numpy(), LABELS)
    print()
    print("| three classes: the windows' error mix | windows | macro F1 interval coverage | mean error | mean width |")
    print("|---|---:|---:|---:|---:|")
    for name, truth in (("as on the reference", STABLE), ("changed", CHANGED)):
        covered, err, width = 0, [], []
        for _ in range(windows):
            pred, conf, label = multiclass(rng, rows, truth)
            c = pd.DataFrame({"p": pred, "b": np.rint(conf * BINS).astype(int)}).groupby(["p", "b"]).size()
            gp, gb, gn = (c.index.get_level_values(0).to_numpy(), c.index.get_level_values(1).to_numpy(), c.to_numpy())
            gmix = np.stack([mix[a] for a in gp])
            est = expected_scores(gp, cal.p[gb], gn, LABELS, gmix)["f1:macro"]
            lo, hi = intervals(gp, gb, [cal], np.zeros(len(gb), int), gn, LABELS, 200, rng, gmix)["f1:macro"]
            real = f1_score(label, pred, average="macro")
            covered += lo <= real <= hi
            err.append(est - real)
            width.append(hi - lo)
        print(
            f"| {name} | {windows} | {covered / windows:.1%} | {np.mean(err):+.4f} | {np.mean(width):.4f} |", flush=True
        )


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
    multiclass_table(args.windows, args.rows, args.seed)


if __name__ == "__main__":
    main()
