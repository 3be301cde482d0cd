"""Classification figures: accuracy, and precision, recall and F1 (weighted and macro).
Confusion counts (segment x label x prediction) are aggregated in the warehouse;
scikit-learn computes the figures from them with the counts as sample weights, which
equals scoring the rows one by one. Labels may arrive late: figures stay provisional
for `quality.label_delay_days`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from aimon.records import MetricRecord
from aimon.tasks.contract import valid_rows
from aimon.tasks.orchestration.context import AnalysisContext
from aimon.tasks.quality.figures import Family, Figure
from aimon.tasks.quality.reads import fetch_frame, segment_columns, segments
from aimon.windows import Window

AVERAGES = ("weighted", "macro")


def classification_scores(
    y_true: Sequence[Any], y_pred: Sequence[Any], weight: Sequence[float] | None = None
) -> dict[tuple[str, str | None], float]:
    """Accuracy, and precision, recall and F1 averaged `weighted` and `macro`
    (over the labels present in either column), with scikit-learn. A class never
    predicted has precision 0 rather than a warning."""
    from sklearn.metrics import (  # noqa: PLC0415  lazy: sklearn costs ~0.7 s to import
        accuracy_score,
        precision_recall_fscore_support,
    )

    out: dict[tuple[str, str | None], float] = {
        ("model_accuracy", None): float(accuracy_score(y_true, y_pred, sample_weight=weight))
    }
    for avg in AVERAGES:
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=avg, sample_weight=weight, zero_division=0)
        out[("model_precision", avg)] = float(p)
        out[("model_recall", avg)] = float(r)
        out[("model_f1", avg)] = float(f)
    return out


def confusion_counts(ctx: AnalysisContext, seg: list[sa.ColumnElement[Any]] | None = None) -> pd.DataFrame:
    """Rows with a label or a prediction, counted by segment (default: the quality
    segments), label and prediction."""
    ix = ctx.interactions
    label, pred = ix.req("label"), ix.req("prediction")
    seg = segment_columns(ctx) if seg is None else seg
    stmt = (
        sa.select(
            *seg,
            sa.cast(label, sa.String).label("g_label"),
            sa.cast(pred, sa.String).label("g_prediction"),
            sa.func.count().label("n"),
        )
        .select_from(ix.table)
        .where(ix.in_window(), valid_rows(ix), sa.or_(label.is_not(None), pred.is_not(None)))
        .group_by(
            *[sa.literal_column(str(c.key)) for c in seg],
            sa.literal_column("g_label"),
            sa.literal_column("g_prediction"),
        )
    )
    df = fetch_frame(ctx, stmt)
    df["n"] = df["n"].astype("int64")
    return df


def label_provisional(window: Window, delay_days: int, now: dt.datetime | None = None) -> bool:
    """True while labels for the window may still be arriving."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return delay_days > 0 and window.end + dt.timedelta(days=delay_days) > now


def classification_family(ctx: AnalysisContext) -> Family:
    fam = Family()
    ix = ctx.interactions
    if not ix.has("label", "prediction"):
        missing = [c for c in ("label", "prediction") if not ix.has(c)]
        fam.notes.append(f"classification skipped: the table has no {' or '.join(missing)} column")
        return fam
    counts = confusion_counts(ctx)
    lab = counts["g_label"].astype("string").str.strip()
    pred = counts["g_prediction"].astype("string").str.strip()
    has_label = (lab.notna() & (lab != "")).to_numpy(dtype=bool)
    has_pred = (pred.notna() & (pred != "")).to_numpy(dtype=bool)
    # A blank label or prediction is bad input, counted once as such (not as awaiting).
    blank = ((lab == "") | (pred == "")).fillna(False).to_numpy(dtype=bool)
    empty = int(counts.loc[blank, "n"].sum())
    awaiting = int(counts.loc[has_pred & lab.isna().to_numpy(dtype=bool), "n"].sum())
    no_pred = int(counts.loc[has_label & pred.isna().to_numpy(dtype=bool), "n"].sum())
    both = has_label & has_pred
    counts = counts.assign(g_label=lab, g_prediction=pred)
    for labels, mask in segments(counts):
        part = counts[mask & both]
        predicted = int(counts.loc[mask & has_pred, "n"].sum())
        if predicted:
            fam.extra.append(MetricRecord.of("quality_label_coverage", part["n"].sum() / predicted, **labels))
        n = int(part["n"].sum())
        if not n:
            continue
        scores = classification_scores(
            part["g_label"].tolist(), part["g_prediction"].tolist(), part["n"].to_numpy(dtype=float)
        )
        for (metric, avg), value in scores.items():
            extra = {"average": avg} if avg else {}
            fam.figures.append(Figure.of(metric, value, n, **labels, **extra))
    labelled = int(counts.loc[both, "n"].sum())
    fam.details = {"labelled": labelled, "awaiting_label": awaiting, "no_prediction": no_pred, "empty": empty}
    for reason, v in (("awaiting_label", awaiting), ("no_prediction", no_pred), ("empty_label_or_prediction", empty)):
        fam.extra.append(MetricRecord.of("quality_excluded_rows", v, family="classification", reason=reason))
    delay = ctx.cfg.quality.label_delay_days
    provisional = label_provisional(ctx.window, delay)
    fam.extra.append(MetricRecord.of("quality_labels_provisional", int(provisional)))
    if not labelled:
        fam.notes.append(
            "classification: no labels in this window"
            + (f" ({awaiting:,} predictions await a label)" if awaiting else "")
        )
    elif awaiting or no_pred or empty:
        parts = [
            f"{v:,} {what}"
            for what, v in (("await a label", awaiting), ("have no prediction", no_pred), ("are empty", empty))
            if v
        ]
        fam.notes.append(f"classification on {labelled:,} labelled rows; left out: " + ", ".join(parts))
    if provisional:
        ready = (ctx.window.end + dt.timedelta(days=delay)).date()
        fam.notes.append(
            f"classification figures are provisional: labels arrive up to {delay} days late; "
            f"rerun this window on or after {ready} (aimon run --date, or a backfill) to recompute them"
        )
    return fam
