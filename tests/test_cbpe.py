"""Performance estimated without labels (CBPE, aimon.tasks.quality.estimated): the
expected figures equal NannyML's definitions computed row by row, the calibration
equals scikit-learn's fitted on the rows, the interval covers the realised accuracy in
~95% of simulated windows where the truth is known, and through the warehouse the
figures, the counted bad confidences and the estimate's error against the labels."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from aimon.records import ALL

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from calibrate_cbpe import LABELS, STABLE, multiclass

from aimon.tasks.quality.estimated import BINS, error_mix, expected_scores, fit_calibrator, intervals
from tests.test_quality import TS, ctx_for, figs, write_arrow


def _grouped(pred: np.ndarray, bins: np.ndarray, correct: np.ndarray | None = None):  # type: ignore[no-untyped-def]
    df = pd.DataFrame({"pred": pred, "bin": bins, "correct": 0 if correct is None else correct})
    g = df.groupby(["pred", "bin"]).agg(n=("bin", "size"), correct=("correct", "sum")).reset_index()
    return g["pred"].to_numpy(), g["bin"].to_numpy(), g["n"].to_numpy(), g["correct"].to_numpy()


def test_expected_figures_are_nannyml_cbpe_row_by_row_and_the_calibration_is_sklearns() -> None:
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(4)
    n = 4000
    conf = np.round(rng.beta(5, 2, n) * BINS) / BINS  # on the 1e-3 grid: binning is exact
    correct = rng.random(n) < conf**1.5
    pred = np.where(rng.random(n) < 0.6, "yes", "no")
    b = np.rint(conf * BINS).astype(int)
    gb_all = pd.DataFrame({"b": b, "c": correct}).groupby("b").agg(n=("c", "size"), k=("c", "sum"))
    cal = fit_calibrator(gb_all.index.to_numpy(), gb_all["n"].to_numpy(), gb_all["k"].to_numpy(), "isotonic")
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(conf, correct.astype(float))
    assert np.allclose(cal.p[b], iso.predict(conf), atol=1e-12)

    # NannyML's binary CBPE, row by row: the calibrated probability of the positive class,
    # and the expected confusion matrix from it.
    p_correct = iso.predict(conf)
    got = {}
    for pos in ("yes", "no"):
        proba = np.where(pred == pos, p_correct, 1 - p_correct)
        is_pos = pred == pos
        tp, fp = proba[is_pos].sum(), (1 - proba[is_pos]).sum()
        fn, tn = proba[~is_pos].sum(), (1 - proba[~is_pos]).sum()
        got[pos] = {"precision": tp / (tp + fp), "recall": tp / (tp + fn), "f1": 2 * tp / (2 * tp + fp + fn)}
        got[pos]["support"] = tp + fn
        got["accuracy"] = (tp + tn) / n
    gpred, gbins, gnn, _ = _grouped(pred, b)
    est = expected_scores(gpred, cal.p[gbins], gnn, ["no", "yes"])
    assert est["accuracy"] == pytest.approx(got["accuracy"], rel=1e-12)
    for m in ("precision", "recall", "f1"):
        assert est[f"{m}:macro"] == pytest.approx((got["yes"][m] + got["no"][m]) / 2, rel=1e-12)
        w = (got["yes"][m] * got["yes"]["support"] + got["no"][m] * got["no"]["support"]) / n
        assert est[f"{m}:weighted"] == pytest.approx(w, rel=1e-12)
    # More than two classes: accuracy only (a wrong prediction's true class is unknown).
    assert set(expected_scores(gpred, cal.p[gbins], gnn, ["a", "b", "c"])) == {"accuracy"}


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_the_interval_covers_the_realised_accuracy_in_about_95_percent_of_windows(method: str) -> None:
    """An over-confident model (truth: P(correct) = logistic(-0.4 + 0.7 logit(conf)), which
    both calibrations can represent); 200 windows of 1,500 rows whose labels are drawn
    from the truth. Raw confidences overstate accuracy by ~14 points; the calibrated
    estimate is unbiased and its 95% interval holds the realised accuracy ~95% of the time."""
    rng = np.random.default_rng(11)

    def rows(n: int) -> tuple[np.ndarray, np.ndarray]:
        conf = np.clip(np.round(rng.beta(6, 2, n) * BINS) / BINS, 0.001, 0.999)
        logit = np.log(conf / (1 - conf))
        return conf, rng.random(n) < 1 / (1 + np.exp(-(-0.4 + 0.7 * logit)))

    conf, ok = rows(20_000)
    g = pd.DataFrame({"b": np.rint(conf * BINS).astype(int), "c": ok}).groupby("b").agg(n=("c", "size"), k=("c", "sum"))
    cal = fit_calibrator(g.index.to_numpy(), g["n"].to_numpy(), g["k"].to_numpy(), method)
    covered, errors, raw_bias = 0, [], []
    for _ in range(200):
        c, right = rows(1500)
        pred = np.full(len(c), "yes")
        gp, gb, gn, _ = _grouped(pred, np.rint(c * BINS).astype(int))
        est = expected_scores(gp, cal.p[gb], gn, ["yes"])["accuracy"]
        ci = intervals(gp, gb, [cal], np.zeros(len(gb), int), gn, ["yes"], 200, rng)["accuracy"]
        realised = right.mean()
        covered += ci[0] <= realised <= ci[1]
        errors.append(est - realised)
        raw_bias.append(c.mean() - realised)
    assert 0.90 <= covered / 200 <= 0.99
    assert abs(np.mean(errors)) < 0.004 and np.mean(raw_bias) > 0.05


# The 3-class model of bench/calibrate_cbpe.py: predictions a/b/c (50/30/20%), an
# over-confident confidence (P(correct) = conf^1.5), wrong predictions' true classes
# drawn from a mix per predicted class.
CLASSES, MIX, three_classes = LABELS, STABLE, multiclass


def _calibrate(pred: np.ndarray, conf: np.ndarray, label: np.ndarray):  # type: ignore[no-untyped-def]
    b = np.rint(conf * BINS).astype(int)
    g = pd.DataFrame({"b": b, "c": pred == label}).groupby("b").agg(n=("c", "size"), k=("c", "sum"))
    cal = fit_calibrator(g.index.to_numpy(), g["n"].to_numpy(), g["k"].to_numpy(), "isotonic")
    e = pd.DataFrame({"p": pred, "l": label}).groupby(["p", "l"]).size().reset_index(name="n")
    return cal, error_mix(e["p"].to_numpy(), e["l"].to_numpy(), e["n"].to_numpy(), CLASSES)


def test_three_classes_estimate_precision_recall_f1_from_the_reference_error_mix() -> None:
    """With only the predicted class's confidence, a wrong prediction's true class is
    taken to split as on the reference. The expected figures equal the row-by-row
    expected confusion (P(y = pred) = p, P(y = c) = (1 - p) x share(pred -> c)); on
    windows drawn from the same model the 95% interval holds the realised macro F1
    (scikit-learn on the labels) in ~95% of windows (bench/calibrate_cbpe.py also
    measures a changed error mix)."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(8)
    cal, mix = _calibrate(*three_classes(rng, 30_000, MIX))
    assert mix["a"] == pytest.approx([0, 0.8, 0.2], abs=0.02)
    pred, conf, _ = three_classes(rng, 3000, MIX)
    b = np.rint(conf * BINS).astype(int)
    p = cal.p[b]
    proba = np.stack(
        [np.where(pred == c, p, (1 - p) * np.array([mix[a][i] for a in pred])) for i, c in enumerate(CLASSES)], 1
    )
    f1 = []
    for i, c in enumerate(CLASSES):
        tp = proba[pred == c, i].sum()
        fp = (1 - proba[pred == c, i]).sum()
        fn = proba[pred != c, i].sum()
        f1.append(2 * tp / (2 * tp + fp + fn))
    g = pd.DataFrame({"pred": pred, "bin": b}).groupby(["pred", "bin"]).size().reset_index(name="n")
    gp, gb, gn = g["pred"].to_numpy(), g["bin"].to_numpy(), g["n"].to_numpy()
    gmix = np.stack([mix[a] for a in gp])
    est = expected_scores(gp, cal.p[gb], gn, CLASSES, gmix)
    assert est["f1:macro"] == pytest.approx(np.mean(f1), rel=1e-12)
    assert est["accuracy"] == pytest.approx(p.mean(), rel=1e-12)

    covered, errors = 0, []
    for _ in range(150):
        pred, conf, label = three_classes(rng, 1500, MIX)
        g = pd.DataFrame({"pred": pred, "bin": np.rint(conf * BINS).astype(int)}).groupby(["pred", "bin"]).size()
        g = g.reset_index(name="n")
        gp, gb, gn = g["pred"].to_numpy(), g["bin"].to_numpy(), g["n"].to_numpy()
        gmix = np.stack([mix[a] for a in gp])
        est = expected_scores(gp, cal.p[gb], gn, CLASSES, gmix)["f1:macro"]
        lo, hi = intervals(gp, gb, [cal], np.zeros(len(gb), int), gn, CLASSES, 200, rng, gmix)["f1:macro"]
        realised = f1_score(label, pred, average="macro")
        covered += lo <= realised <= hi
        errors.append(est - realised)
    assert 0.90 <= covered / 150 <= 0.99
    assert abs(np.mean(errors)) < 0.005


def test_estimated_figures_through_the_warehouse_with_bad_confidences_counted(tmp_path: Path) -> None:
    """A week of labelled reference rows, then a day whose rows half have labels: the
    estimate equals the calibration of the reference rows applied to the day's
    confidences; confidences outside [0, 1] and missing ones are counted and left out;
    the estimate's error over the labelled rows is reported; a model with too few
    labelled reference rows is not estimated and a note says why."""
    rng = np.random.default_rng(8)

    def day(offset: int, n: int, model: str, labelled: float) -> pd.DataFrame:
        conf = np.round(rng.beta(5, 2, n) * BINS) / BINS
        right = rng.random(n) < conf**1.4
        pred = np.where(rng.random(n) < 0.5, "spam", "ham")
        label = np.where(right, pred, np.where(pred == "spam", "ham", "spam")).astype(object)
        label[rng.random(n) >= labelled] = None
        return pd.DataFrame(
            {
                "timestamp": [TS + pd.Timedelta(days=offset, seconds=i) for i in range(n)],
                "model": model,
                "status": "ok",
                "request_id": [f"{model}{offset}-{i}" for i in range(n)],
                "label": label,
                "prediction": pred,
                "confidence": conf,
            }
        )

    ref = pd.concat([day(-d, 400, "clf", 1.0) for d in range(1, 8)] + [day(-1, 50, "tiny", 1.0)])
    cur = pd.concat([day(0, 1000, "clf", 0.5), day(0, 30, "tiny", 1.0)], ignore_index=True)
    cur.loc[0, "confidence"], cur.loc[1, "confidence"], cur.loc[2, "confidence"] = 1.5, -0.2, np.nan
    df = pd.concat([ref, cur], ignore_index=True)
    url = write_arrow(tmp_path / "e.duckdb", {"interactions": pa.Table.from_pandas(df, preserve_index=False)})
    from aimon.tasks.quality.estimated import estimation_family

    fam = estimation_family(ctx_for(url))
    r = ref[ref["model"] == "clf"]
    rb = np.rint(r["confidence"].to_numpy() * BINS).astype(int)
    g = pd.DataFrame({"b": rb, "c": r["label"] == r["prediction"]}).groupby("b").agg(n=("c", "size"), k=("c", "sum"))
    cal = fit_calibrator(g.index.to_numpy(), g["n"].to_numpy(), g["k"].to_numpy(), "isotonic")
    c = cur[(cur["model"] == "clf")].iloc[3:]
    p = cal.p[np.rint(c["confidence"].to_numpy() * BINS).astype(int)]
    got = {(f.metric, f.labels): (f.value, f.n) for f in fam.figures}
    key = ("model_accuracy_estimated", (("model", "clf"),))
    assert got[key][0] == pytest.approx(p.mean(), rel=1e-12) and got[key][1] == len(c)
    assert got[("model_accuracy_estimated", (("model", ALL),))][0] == pytest.approx(p.mean(), rel=1e-12)
    assert ("model_f1_estimated", (("average", "macro"), ("model", "clf"))) in got
    extra = figs(fam.extra)
    left = {dict(k[1])["reason"]: v for k, v in extra.items() if k[0] == "quality_excluded_rows"}
    assert (left["confidence_out_of_range"], left["no_confidence"]) == (2, 1)
    assert any("2 rows with a confidence outside [0, 1]" in x for x in fam.notes)
    assert any("not estimated for tiny" in x and "tiny (50)" in x for x in fam.notes)
    lab = c["label"].notna().to_numpy()
    want_err = p[lab].mean() - (c["label"] == c["prediction"]).to_numpy()[lab].mean()
    assert extra[("model_accuracy_estimation_error", (("model", "clf"),))] == pytest.approx(want_err, rel=1e-9)
    lo = extra[("model_accuracy_estimated_ci_low", (("model", "clf"),))]
    hi = extra[("model_accuracy_estimated_ci_high", (("model", "clf"),))]
    assert lo < p.mean() < hi and hi - lo < 0.1


def test_three_classes_through_the_warehouse_estimate_f1_with_the_reference_error_mix(tmp_path: Path) -> None:
    """Three classes through the warehouse: the reference week's wrong predictions give
    the error mix, and the window's estimated macro F1 equals expected_scores on the
    window's counts with that mix (computed here from the rows with pandas)."""
    from aimon.tasks.quality.estimated import estimation_family

    rng = np.random.default_rng(3)

    def frame(pred: np.ndarray, conf: np.ndarray, label: np.ndarray, offset: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "timestamp": [TS + pd.Timedelta(days=offset, seconds=i) for i in range(len(pred))],
                "model": "clf",
                "status": "ok",
                "request_id": [f"{offset}-{i}" for i in range(len(pred))],
                "label": label if offset < 0 else None,
                "prediction": pred,
                "confidence": conf,
            }
        )

    ref = pd.concat([frame(*three_classes(rng, 600, MIX), offset=-d) for d in range(1, 8)], ignore_index=True)
    cur = frame(*three_classes(rng, 2000, MIX), offset=0)
    df = pd.concat([ref, cur], ignore_index=True)
    url = write_arrow(tmp_path / "m.duckdb", {"interactions": pa.Table.from_pandas(df, preserve_index=False)})
    fam = estimation_family(ctx_for(url))
    cal, mix = _calibrate(ref["prediction"].to_numpy(), ref["confidence"].to_numpy(), ref["label"].to_numpy())
    g = (
        pd.DataFrame({"p": cur["prediction"], "b": np.rint(cur["confidence"].to_numpy() * BINS).astype(int)})
        .groupby(["p", "b"])
        .size()
    )
    gp, gb, gn = g.index.get_level_values(0).to_numpy(), g.index.get_level_values(1).to_numpy(), g.to_numpy()
    want = expected_scores(gp, cal.p[gb], gn, CLASSES, np.stack([mix[a] for a in gp]))
    got = {(f.metric, f.labels): f.value for f in fam.figures}
    for m in ("f1", "precision", "recall"):
        assert got[(f"model_{m}_estimated", (("average", "macro"), ("model", "clf")))] == pytest.approx(
            want[f"{m}:macro"], rel=1e-9
        )
    assert not any("need two classes" in n for n in fam.notes)
