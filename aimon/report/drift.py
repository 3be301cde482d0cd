"""The drift page: per feature the score over time against its threshold, the share
of drifted features, embedding drift, and the latest window's distributions overlaid
on the reference's, from the statistics drift stored (aimon.store.reference)."""

from __future__ import annotations

from aimon.report.bands import alert_marks
from aimon.report.charts import Chart, Trace, render, slug
from aimon.report.concerns import empty_page
from aimon.report.data import ReportData
from aimon.report.distributions import distribution_charts
from aimon.report.figures import series_chart, trace_of
from aimon.report.shell import page
from aimon.stats import stattests as st

_EFFECT = {"wasserstein": "numerical", "jensenshannon": "categorical"}


def score_threshold(data: ReportData, feature: str, method: str) -> tuple[float, str] | None:
    """The line a drift score is read against: the effect floor for the effect methods
    (a feature drifts only when its effect reaches it), else the feature's or the
    method's threshold for a distance; None for a test statistic read by its p-value."""
    d = data.cfg.drift
    if method in _EFFECT:
        floor = getattr(d.effect_floors, _EFFECT[method])
        return floor, f"effect floor {floor:g} (drift.effect_floors.{_EFFECT[method]})"
    spec = next((f for f in d.features if f.name == feature), None)
    if spec is not None and spec.method == method and spec.threshold is not None:
        return spec.threshold, f"threshold {spec.threshold:g} (drift.features)"
    try:
        test = st.get_stattest(method)
    except (KeyError, ValueError):
        return None
    return (
        None if test.p_value else (test.default_threshold, f"{method}'s default threshold {test.default_threshold:g}")
    )


def _feature_chart(data: ReportData, feature: str) -> Chart:
    c = Chart(f"chart-drift-{slug(feature)}", f"Drift of {feature}", "score")
    all_x = [data.x(w.start) for w in data.windows]
    lines = []
    for labels, points in data.series("data_drift_score", ("feature", "method"), feature=feature):
        method = labels["method"]
        c.traces.append(trace_of(data, f"{method} score", points))
        thr = score_threshold(data, feature, method)
        if thr is not None:
            lines.append(Trace(f"{method}: {thr[1]}", all_x, [thr[0]] * len(all_x), "threshold"))
    c.traces += lines
    c.marks = alert_marks(data, "data_drift_detected", [{"feature": feature}])
    detected = data.one("data_drift_detected", feature=feature)
    n = sum(1 for v in detected.values() if v >= 1)
    c.caption = (
        f"Drift detected in {n} of {len(detected)} windows "
        f"(adjusted p < {data.cfg.drift.p_value:g} and effect at its floor)."
    )
    return c


def _p_values(data: ReportData) -> Chart:
    c = Chart("chart-drift-p-values", "Adjusted p-values of the drift tests (log scale)", "p (Benjamini-Hochberg)")
    c.log_y = True
    for labels, points in data.series("data_drift_p_value_adjusted", ("feature", "method")):
        # A p-value of 0 cannot be drawn on a log axis: floor it at 1e-300.
        c.traces.append(
            trace_of(data, f"{labels['feature']} ({labels['method']})", {s: max(v, 1e-300) for s, v in points.items()})
        )
    all_x = [data.x(w.start) for w in data.windows]
    alpha = data.cfg.drift.p_value
    c.traces.append(Trace(f"alpha {alpha:g} (drift.p_value)", all_x, [alpha] * len(all_x), "threshold"))
    c.empty = f"no drift tests stored in {data.range_text}"
    return c


def drift(data: ReportData) -> str:
    here, title = "drift.html", "Drift"
    if (p := empty_page(data, title, here)) is not None:
        return p
    features = sorted({data.labels[lj]["feature"] for lj in data.figures.get("data_drift_score", {})})
    share = series_chart(
        data,
        "chart-drift-share",
        "Share of drifted features",
        "data_drift_share",
        [("share", lab, pts) for lab, pts in data.series("data_drift_share", ())],
        y_title="share",
        percent=True,
    )
    all_x = [data.x(w.start) for w in data.windows]
    ds = data.cfg.drift.dataset_share
    if share.points:
        share.traces.append(
            Trace(f"dataset drift at {ds:.0%} (drift.dataset_share)", all_x, [ds] * len(all_x), "threshold")
        )
    emb = series_chart(
        data,
        "chart-embedding-drift",
        "Embedding drift scores",
        "embedding_drift_score",
        [(lab["method"], lab, pts) for lab, pts in data.series("embedding_drift_score", ("method",))],
        y_title="score",
    )
    e = data.cfg.drift.embeddings
    if e is not None and emb.points:
        emb.traces.append(
            Trace(
                f"domain classifier AUC threshold {e.auc_threshold:g}",
                all_x,
                [e.auc_threshold] * len(all_x),
                "threshold",
            )
        )
        emb.marks = alert_marks(data, "embedding_drift_detected", [{}])
    parts = ["<h2>Features over time</h2>", render(share), render(_p_values(data))]
    parts += [render(_feature_chart(data, f)) for f in features]
    if not features:
        parts.append(
            render(
                Chart(
                    "chart-drift-features",
                    "Drift of each feature",
                    empty=f"no drift scores stored in {data.range_text} (is drift configured?)",
                )
            )
        )
    parts.append(render(emb))
    latest = data.windows[-1]
    dist, note = distribution_charts(data, latest)
    parts.append(f"<h2>Distributions: {latest.label} against its reference</h2>")
    parts.append(f'<p class="aimon-caption">{note}</p>')
    parts += [render(c) for c in dist]
    return page(data, title, "".join(parts), here=here)
