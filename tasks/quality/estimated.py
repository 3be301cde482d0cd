"""Performance estimated without labels (NannyML's CBPE, confidence-based performance
estimation) from the `confidence` column: the model's probability for the class it
predicted.

1. **Calibration.** Per model, on the labelled rows of the reference period (drift's
   reference range), the share of correct predictions by confidence, fitted with
   scikit-learn's isotonic regression (default) or Platt scaling
   (`quality.estimation.calibration`). A model with fewer than `min_reference_rows`
   labelled reference rows is not estimated (a note says so).
2. **Expected figures** (NannyML's definitions). A row predicted `a` with calibrated
   confidence p is correct with probability p. Expected accuracy = mean p. For two
   classes {a, b} the row is `b` with probability 1 - p, so the expected confusion
   matrix is TP_a = sum of p over rows predicted a, FP_a = sum of 1 - p over them,
   FN_a = sum of 1 - p over rows predicted b; precision, recall and F1 follow per
   class, averaged `macro` and `weighted` (by expected support) as the realised
   figures are. With more than two classes the confidence does not say where a wrong
   prediction's true class went: it is taken to split as the model's wrong predictions
   of that class split on the labelled reference rows (error_mix, with one pseudo-row
   per other class), so FN_c = sum over rows predicted a != c of (1 - p) x that share.
   It holds while the error mix is stable (tests/test_cbpe.py, bench/calibrate_cbpe.py
   measure it when it is and when it is not).
3. **Interval.** The realised figure is random even with a perfect calibration (each
   row is a coin with its own p), and the calibration is itself estimated: 95%
   percentiles of `draws` simulated windows, each drawing the calibration from its
   sampling distribution (per isotonic block: normal with its binomial spread over the
   block's reference rows; Platt: the fitted coefficients' covariance) and every
   group's correct count from a binomial.
4. **Against the labels.** Where the window has labels (once they arrive: rerun
   after `label_delay_days`), `model_accuracy_estimation_error` = the estimate over
   the labelled rows minus the realised accuracy over the same rows.

All of it from counts the warehouse groups (segment x prediction x label x confidence
to 1e-3), never per row in Python: confidences are binned to 1e-3 (BINS).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from aimon.records import MetricRecord
from aimon.tasks.contract import valid_rows
from aimon.tasks.orchestration.context import AnalysisContext
from aimon.tasks.quality.figures import Family, Figure
from aimon.tasks.quality.reads import segment_columns, segments

BINS = 1000  # confidence resolution: bin i holds confidences in [i - 0.5, i + 0.5) / BINS


@dataclass(frozen=True)
class Calibrator:
    """P(correct | confidence bin) for bins 0..BINS, and how to draw it again."""

    method: str
    p: np.ndarray  # (BINS + 1,) calibrated probability per bin
    rows: int  # labelled reference rows it was fitted on
    # isotonic: the block (run of equal fitted values) of each bin and each block's rows
    block: np.ndarray | None = None
    block_rows: np.ndarray | None = None
    # platt: coefficients (intercept, slope on the logit) and their covariance
    coef: np.ndarray | None = None
    cov: np.ndarray | None = None

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One calibration from its sampling distribution (the interval's draws)."""
        if self.method == "platt":
            assert self.coef is not None and self.cov is not None
            return _platt(rng.multivariate_normal(self.coef, self.cov))
        assert self.block is not None and self.block_rows is not None
        # One normal draw per block (its rows share one fitted value), scaled per bin by
        # the binomial spread of that value over the block's reference rows.
        z = rng.standard_normal(len(self.block_rows))[self.block]
        sd = np.sqrt(self.p * (1 - self.p) / np.maximum(self.block_rows[self.block], 1))
        return np.clip(self.p + sd * z, 0.0, 1.0)


def _logit_grid() -> np.ndarray:
    c = np.clip(np.arange(BINS + 1) / BINS, 0.5 / BINS, 1 - 0.5 / BINS)
    return np.asarray(np.log(c / (1 - c)))


def _platt(coef: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-(coef[0] + coef[1] * _logit_grid()))))


def fit_calibrator(bins: np.ndarray, n: np.ndarray, correct: np.ndarray, method: str) -> Calibrator:
    """Fit P(correct | confidence) on reference counts: `n` labelled rows in confidence
    bin `bins`, `correct` of them predicted right (scikit-learn, the counts as weights)."""
    bins, n, correct = (np.asarray(a) for a in (bins, n, correct))
    x = bins / BINS
    if method == "platt":
        from sklearn.linear_model import LogisticRegression  # noqa: PLC0415  lazy: ~0.7 s import

        grid = _logit_grid()
        xs = np.concatenate([grid[bins], grid[bins]])[:, None]
        ys = np.concatenate([np.ones(len(bins)), np.zeros(len(bins))])
        ws = np.concatenate([correct, n - correct]).astype(float)
        keep = ws > 0
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(xs[keep], ys[keep], sample_weight=ws[keep])
        coef = np.array([lr.intercept_[0], lr.coef_[0, 0]])
        p_hat = 1 / (1 + np.exp(-(coef[0] + coef[1] * grid[bins])))
        design = np.stack([np.ones(len(bins)), grid[bins]], axis=1)
        fisher = (design * (n * p_hat * (1 - p_hat))[:, None]).T @ design
        return Calibrator("platt", _platt(coef), int(n.sum()), coef=coef, cov=np.linalg.pinv(fisher))
    from sklearn.isotonic import IsotonicRegression  # noqa: PLC0415

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
    iso.fit(x, correct / n, sample_weight=n.astype(float))
    grid = np.arange(BINS + 1) / BINS
    p = np.asarray(iso.predict(grid), dtype=np.float64)
    # Blocks: runs of equal fitted values over the fitted bins; a bin between two fitted
    # bins takes the block of the nearest one.
    fitted = np.asarray(iso.predict(x))
    order = np.argsort(bins)
    starts = np.r_[True, np.diff(fitted[order]) != 0]
    block_of_fit = np.cumsum(starts) - 1
    block_rows = np.bincount(block_of_fit, weights=n[order]).astype(float)
    nearest = np.clip(np.searchsorted(bins[order], np.arange(BINS + 1)), 0, len(order) - 1)
    left = np.clip(nearest - 1, 0, len(order) - 1)
    closer_left = np.abs(bins[order][left] - np.arange(BINS + 1)) < np.abs(bins[order][nearest] - np.arange(BINS + 1))
    block = block_of_fit[np.where(closer_left, left, nearest)]
    return Calibrator("isotonic", p, int(n.sum()), block=block, block_rows=block_rows)


def other_class_mix(pred_class: np.ndarray, classes: list[str]) -> np.ndarray | None:
    """Where a wrong prediction's true class goes when that is known without data: with
    two classes, the other one (a (groups, classes) one-hot); with more, None."""
    if len(classes) != 2:
        return None
    return np.stack([pred_class != c for c in classes], axis=1).astype(np.float64)


def error_mix(
    ref_pred: np.ndarray, ref_label: np.ndarray, ref_n: np.ndarray, classes: list[str], prior: float = 1.0
) -> dict[str, np.ndarray]:
    """For each predicted class a, the share of the reference's wrong predictions of a
    whose true class was c (c != a), with `prior` pseudo-rows per other class so a
    class never seen wrong on the reference still gets a share (Dirichlet smoothing);
    with two classes exactly the other class."""
    out = {}
    k = {c: i for i, c in enumerate(classes)}
    for a in classes:
        counts = np.full(len(classes), prior)
        counts[k[a]] = 0.0
        wrong = (ref_pred == a) & (ref_label != a)
        for c, n in zip(ref_label[wrong], ref_n[wrong], strict=True):
            if c in k:
                counts[k[c]] += n
        out[a] = counts / counts.sum()
    return out


def _scores(
    pred_class: np.ndarray, right: np.ndarray, missed: np.ndarray, n: np.ndarray, classes: list[str]
) -> dict[str, float]:
    """Accuracy, and precision, recall and F1 per class averaged macro and weighted (by
    support), from groups of `n` rows predicted `pred_class` of which `right` are right
    and `missed[:, c]` truly class c (expected or drawn counts)."""
    out = {"accuracy": float(right.sum() / n.sum())}
    per: dict[str, tuple[float, float, float]] = {}
    for i, c in enumerate(classes):
        mine = pred_class == c
        tp = float(right[mine].sum())
        fp = float((n[mine] - right[mine]).sum())
        fn = float(missed[~mine, i].sum())
        per[c] = (tp, fp, fn)
    for name, f in (
        ("precision", lambda tp, fp, fn: tp / (tp + fp) if tp + fp else 0.0),
        ("recall", lambda tp, fp, fn: tp / (tp + fn) if tp + fn else 0.0),
        ("f1", lambda tp, fp, fn: 2 * tp / (2 * tp + fp + fn) if tp else 0.0),
    ):
        vals = {c: f(*per[c]) for c in classes}
        support = {c: per[c][0] + per[c][2] for c in classes}
        out[f"{name}:macro"] = float(np.mean(list(vals.values())))
        out[f"{name}:weighted"] = float(sum(vals[c] * support[c] for c in classes) / sum(support.values()))
    return out


def expected_scores(
    pred_class: np.ndarray, p: np.ndarray, n: np.ndarray, classes: list[str], mix: np.ndarray | None = None
) -> dict[str, float]:
    """NannyML's expected figures from groups of `n` rows predicted `pred_class` whose
    calibrated confidence is `p`: accuracy, and precision, recall and F1 per class
    averaged macro and weighted (by expected support) where `mix` (groups x classes:
    where each group's wrong predictions' true classes go) is given or known (two
    classes: the other one)."""
    mix = mix if mix is not None else other_class_mix(pred_class, classes)
    if mix is None:
        return {"accuracy": float(np.dot(n, p) / n.sum())}
    return _scores(pred_class, n * p, (n * (1 - p))[:, None] * mix, n, classes)


def intervals(
    pred_class: np.ndarray,
    bins: np.ndarray,
    calibrators: list[Calibrator],
    cal_index: np.ndarray,
    n: np.ndarray,
    classes: list[str],
    draws: int,
    rng: np.random.Generator,
    mix: np.ndarray | None = None,
) -> dict[str, tuple[float, float]]:
    """95% percentile intervals of the realised figures over `draws` simulated windows:
    the calibration drawn, each group's right count from a binomial, and its wrong rows'
    true classes from a multinomial over `mix`."""
    known = other_class_mix(pred_class, classes)
    mix = mix if mix is not None else known
    sims: dict[str, list[float]] = {}
    for _ in range(draws):
        p = np.stack([c.draw(rng) for c in calibrators])[cal_index, bins]
        right = rng.binomial(n, p)
        if mix is None:
            got = {"accuracy": float(right.sum() / n.sum())}
        else:
            # Two classes: every wrong row is the other class, nothing to draw.
            wrong = (n - right)[:, None] * mix if known is not None else rng.multinomial(n - right, mix)
            got = _scores(pred_class, right, wrong, n, classes)
        for k, v in got.items():
            sims.setdefault(k, []).append(v)
    return {k: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) for k, v in sims.items()}


# -- the family -------------------------------------------------------------------------


def _counts(ctx: AnalysisContext, params: dict[str, Any], with_segments: bool) -> pd.DataFrame:
    """Rows with a prediction, grouped by (segments,) label, prediction and confidence
    bin; bin -1 holds confidences outside [0, 1], bin -2 missing ones."""
    ix = ctx.interactions
    conf, label, pred = ix.req("confidence"), ix.req("label"), ix.req("prediction")
    binned = sa.case(
        (conf.is_(None), -2),
        (sa.or_(conf < 0, conf > 1), -1),
        else_=sa.cast(sa.func.round(sa.cast(conf, sa.Float) * BINS), sa.Integer),
    ).label("g_bin")
    seg = segment_columns(ctx) if with_segments else [sa.cast(ix.req("model"), sa.String).label("g_model")]
    stmt = (
        sa.select(
            *seg,
            sa.cast(label, sa.String).label("g_label"),
            sa.cast(pred, sa.String).label("g_prediction"),
            binned,
            sa.func.count().label("n"),
        )
        .select_from(ix.table)
        .where(ix.in_window(), valid_rows(ix), pred.is_not(None))
        .group_by(
            *[sa.literal_column(str(c.key)) for c in seg],
            sa.literal_column("g_label"),
            sa.literal_column("g_prediction"),
            sa.literal_column("g_bin"),
        )
    )
    df = pd.DataFrame(ctx.warehouse.fetch(stmt, params), columns=[c.key for c in stmt.selected_columns])
    for c in ("g_label", "g_prediction"):
        df[c] = df[c].astype("string").str.strip().replace("", pd.NA)
    df["n"] = df["n"].astype("int64")
    df["g_bin"] = df["g_bin"].astype("int64")
    return df


def estimation_family(ctx: AnalysisContext) -> Family:
    from aimon.tasks.quality.concept_drift import reference_range  # noqa: PLC0415

    fam = Family()
    ix, q = ctx.interactions, ctx.cfg.quality
    est = q.estimation
    if not est.enabled or not ix.has("confidence"):
        return fam
    if not ix.has("label", "prediction"):
        fam.notes.append("performance estimation skipped: the table has confidence but no label or prediction column")
        return fam
    start, before, name = reference_range(ctx.window, ctx.cfg.reference)
    ref = _counts(ctx, {"window_start": start, "window_end": before}, with_segments=False)
    cur = _counts(ctx, ctx.params, with_segments=True)
    bad = int(cur.loc[cur["g_bin"] == -1, "n"].sum())
    missing = int(cur.loc[cur["g_bin"] == -2, "n"].sum())
    for reason, v in (("confidence_out_of_range", bad), ("no_confidence", missing)):
        fam.extra.append(MetricRecord.of("quality_excluded_rows", v, family="estimation", reason=reason))
    if bad:
        fam.notes.append(f"performance estimation: {bad:,} rows with a confidence outside [0, 1] left out")
    cur = cur[cur["g_bin"] >= 0]
    ref = ref[(ref["g_bin"] >= 0) & ref["g_label"].notna() & ref["g_prediction"].notna()]
    ref = ref.assign(correct=np.where(ref["g_label"] == ref["g_prediction"], ref["n"], 0))
    calibrators: dict[str, Calibrator] = {}
    thin: list[str] = []
    for model, part in ref.groupby("g_model", sort=True):
        g = part.groupby("g_bin", sort=True)[["n", "correct"]].sum()
        if int(g["n"].sum()) < est.min_reference_rows:
            thin.append(f"{model} ({int(g['n'].sum()):,})")
            continue
        calibrators[str(model)] = fit_calibrator(
            g.index.to_numpy(), g["n"].to_numpy(), g["correct"].to_numpy(), est.calibration
        )
    models = sorted(set(cur["g_model"].astype(str)))
    uncalibrated = [m for m in models if m not in calibrators]
    if uncalibrated:
        why = [t for t in thin if t.split(" (")[0] in uncalibrated]
        fam.notes.append(
            f"performance estimation: not estimated for {', '.join(uncalibrated)}: fewer than "
            f"{est.min_reference_rows:,} labelled reference rows with a confidence ({name})"
            + (f"; have {', '.join(why)}" if why else "")
        )
    cur = cur[cur["g_model"].astype(str).isin(list(calibrators))].reset_index(drop=True)
    if cur.empty:
        return fam
    order = sorted(calibrators)
    cal_list = [calibrators[m] for m in order]
    cal_index = cur["g_model"].astype(str).map({m: i for i, m in enumerate(order)}).to_numpy()
    bins = cur["g_bin"].to_numpy()
    p = np.stack([c.p for c in cal_list])[cal_index, bins]
    classes = sorted(
        set(ref["g_label"].dropna()) | set(ref["g_prediction"].dropna()) | set(cur["g_prediction"].dropna())
        | set(cur["g_label"].dropna())
    )  # fmt: skip
    mix = None
    if len(classes) > 2:
        # Only the predicted class's confidence: a wrong prediction's true class is
        # taken to split as the model's wrong predictions of that class did on the
        # reference period (error_mix).
        mixes = {
            m: error_mix(
                part["g_prediction"].astype(str).to_numpy(),
                part["g_label"].astype(str).to_numpy(),
                part["n"].to_numpy(),
                classes,
            )
            for m, part in ref.groupby("g_model", sort=True)
            if str(m) in calibrators
        }
        mix = np.stack(
            [mixes[m][c] for m, c in zip(cur["g_model"].astype(str), cur["g_prediction"].astype(str), strict=True)]
        )
    stamp = int((ctx.window.start - dt.datetime(1970, 1, 1)).total_seconds())
    rng = np.random.default_rng([q.seed, stamp, 7])
    pred = cur["g_prediction"].astype(str).to_numpy()
    labelled = cur["g_label"].notna().to_numpy()
    n_all = cur["n"].to_numpy()
    for labels, mask in segments(cur):
        if not mask.any():
            continue
        n = n_all[mask]
        m_mix = mix[mask] if mix is not None else None
        got = expected_scores(pred[mask], p[mask], n, classes, m_mix)
        ci = (
            intervals(pred[mask], bins[mask], cal_list, cal_index[mask], n, classes, est.draws, rng, m_mix)
            if est.draws
            else {}
        )
        for key, value in got.items():
            metric, _, avg = key.partition(":")
            extra = {"average": avg} if avg else {}
            name_ = f"model_{metric}_estimated"
            fam.figures.append(Figure.of(name_, value, int(n.sum()), **labels, **extra))
            if key in ci:
                fam.extra.append(MetricRecord.of(f"{name_}_ci_low", ci[key][0], **labels, **extra))
                fam.extra.append(MetricRecord.of(f"{name_}_ci_high", ci[key][1], **labels, **extra))
        lab = mask & labelled
        if lab.any():
            right = (cur["g_label"].astype(str).to_numpy() == pred)[lab]
            realised = float(np.dot(n_all[lab], right) / n_all[lab].sum())
            expected = float(np.dot(n_all[lab], p[lab]) / n_all[lab].sum())
            fam.extra.append(MetricRecord.of("model_accuracy_estimation_error", expected - realised, **labels))
    fam.details = {"calibrated": {m: c.rows for m, c in calibrators.items()}, "method": est.calibration}
    return fam
