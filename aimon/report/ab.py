"""The A/B page: per experiment the decision over the windows, per metric and variant
the cumulative lift with its (always-valid, for sequential experiments) interval,
sample ratio mismatch p over time, and the units per variant."""

from __future__ import annotations

from aimon.report.bands import alert_marks
from aimon.report.charts import Chart, Trace, esc, render, slug, table
from aimon.report.concerns import empty_page
from aimon.report.data import ReportData
from aimon.report.figures import series_chart, trace_of
from aimon.report.shell import page

# The codes of ab_status / ab_metric_status, as aimon.tasks.abtest.results.STATUS_CODES
# and STATUS_TEXT write them (the report sits below aimon.tasks, so it cannot import
# them; tests/test_report.py checks the two agree).
DECISIONS = {
    0: "collecting data",
    1: "significant improvement",
    2: "significant regression",
    3: "no significant difference",
    4: "invalid (sample ratio mismatch)",
}


def decision(code: float | None) -> str:
    return "-" if code is None else DECISIONS.get(int(code), f"code {code:g}")


def _lift_chart(data: ReportData, exp: str, metric: str) -> Chart:
    c = Chart(
        f"chart-ab-{slug(exp)}-{slug(metric)}",
        f"{exp}: lift of {metric} over control (cumulative)",
        "lift",
        percent=True,
    )
    variants = sorted({lab["variant"] for lab, _ in data.series("ab_lift", experiment=exp, metric=metric)})
    marks = []
    for v in variants:
        labels = {"experiment": exp, "metric": metric, "variant": v}
        low, high = data.one("ab_lift_ci_low", **labels), data.one("ab_lift_ci_high", **labels)
        c.traces += [
            trace_of(data, f"{v} interval low", low, "ci_low"),
            trace_of(data, f"{v} interval high", high, "ci_high"),
            trace_of(data, f"{v} lift", data.one("ab_lift", **labels)),
        ]
        marks += alert_marks(data, "ab_regression_detected", [labels])
    all_x = [data.x(w.start) for w in data.windows]
    c.traces.append(Trace("no difference", all_x, [0.0] * len(all_x), "threshold"))
    c.marks = marks
    status = {
        v: decision(_last(data.one("ab_metric_status", experiment=exp, metric=metric, variant=v))) for v in variants
    }
    c.caption = (
        "Shaded band: the lift's interval. Decision now: " + "; ".join(f"{v}: {s}" for v, s in status.items()) + "."
    )
    return c


def _last(points: dict) -> float | None:  # type: ignore[type-arg]
    return points[max(points)] if points else None


def _experiment(data: ReportData, exp: str) -> str:
    status = data.one("ab_status", experiment=exp)
    parts = [
        f"<h2>Experiment {esc(exp)}</h2>",
        f"<p>Decision in the latest window: <b>{esc(decision(_last(status)))}</b></p>",
    ]
    metrics = sorted({lab["metric"] for lab, _ in data.series("ab_lift", experiment=exp)})
    parts += [render(_lift_chart(data, exp, m)) for m in metrics]
    if not metrics:
        parts.append(
            render(
                Chart(
                    f"chart-ab-{slug(exp)}-lift",
                    f"{exp}: lift over control",
                    empty=f"no lifts stored for {exp} in {data.range_text} (still collecting data?)",
                )
            )
        )
    srm = series_chart(
        data,
        f"chart-ab-{slug(exp)}-srm",
        f"{exp}: sample ratio mismatch p-value",
        "ab_srm_p_value",
        [("SRM p", lab, pts) for lab, pts in data.series("ab_srm_p_value", experiment=exp)],
        y_title="p",
        caption="A small p means the traffic split is off and the results are not trustworthy.",
    )
    srm.log_y = True
    units = series_chart(
        data,
        f"chart-ab-{slug(exp)}-units",
        f"{exp}: units per variant (cumulative)",
        "ab_units",
        [(lab["variant"], lab, pts) for lab, pts in data.series("ab_units", experiment=exp)],
        y_title="requests",
    )
    parts += [render(srm), render(units)]
    rows = [[data.x(s), decision(v)] for s, v in sorted(status.items(), reverse=True)]
    parts.append("<details><summary>decision per window</summary>" + table(["window", "decision"], rows) + "</details>")
    return "".join(parts)


def ab(data: ReportData) -> str:
    here, title = "ab.html", "A/B experiments"
    if (p := empty_page(data, title, here)) is not None:
        return p
    stored = {
        lab.get("experiment")
        for m in ("ab_status", "ab_lift")
        for lab in (data.labels[lj] for lj in data.figures.get(m, {}))
    }
    names = sorted({e.name for e in data.cfg.experiments} | {n for n in stored if n})
    if not names:
        body = render(
            Chart(
                "chart-ab",
                "A/B experiments",
                empty="no experiments configured (experiments: in the config) and none stored",
            )
        )
    else:
        body = "".join(_experiment(data, n) for n in names)
    return page(data, title, body, here=here)
