"""The cost page's optimisation section: the monthly savings the cost optimiser found
per kind over the windows, the latest window's ranked savings, and the exact-match
repeat share per endpoint (aimon.tasks.costopt; figures only, like every page)."""

from __future__ import annotations

from aimon.records import ALL
from aimon.report.charts import Chart, esc, render, table
from aimon.report.concerns import cost, named
from aimon.report.data import ReportData
from aimon.report.figures import series_chart

KIND_TEXT = {
    "cache": "exact-match cache",
    "prompt_cache": "provider prompt cache",
    "model_switch": "cheaper model",
}


def savings_table(data: ReportData) -> str:
    """The latest window's recommendations, by monthly dollars saved."""
    rows: list[tuple[float, dict[str, str]]] = []
    latest = None
    for labels, points in data.series("llm_cost_saving_usd"):
        if labels.get("model") == ALL:
            continue
        for start, value in points.items():
            if latest is None or start > latest:
                latest, rows = start, []
            if start == latest:
                rows.append((value, labels))
    if latest is None:
        return render(
            Chart(
                "chart-savings-latest",
                "Recommendations",
                empty="no savings found in the stored windows (cost.optimisation in the config; a prompt column "
                "for the cache, quality figures per endpoint for a model switch)",
            )
        )
    body = []
    for value, lab in sorted(rows, key=lambda r: -r[0]):
        endpoint, model = lab.get("endpoint", ""), lab.get("model", "")
        what = KIND_TEXT.get(lab.get("kind", ""), lab.get("kind", ""))
        to = f" -> {lab['candidate']}" if "candidate" in lab else ""
        share = data.one("llm_cache_repeat_share", model=model, endpoint=endpoint).get(latest)
        evidence = f"{share:.0%} repeats" if share is not None and lab.get("kind") == "cache" else ""
        body.append([what, endpoint, model + to, f"${value:,.0f}", evidence])
    head = f"<h3>Recommendations in the latest window ({esc(data.x(latest))})</h3>"
    note = (
        "<p>Monthly dollars at the window's rate. Kinds overlap (a cached request needs no cheaper model): "
        "each saving is taken alone. The run summary lists each with its evidence and confidence.</p>"
    )
    return head + note + table(["kind", "endpoint", "model", "saving / month", "evidence"], body)


def optimisation_section(data: ReportData) -> str:
    charts = [
        series_chart(
            data,
            "chart-savings",
            "Savings found per month, by kind (USD)",
            "llm_cost_saving_usd",
            [
                (KIND_TEXT.get(lab["kind"], lab["kind"]), lab, pts)
                for lab, pts in data.series("llm_cost_saving_usd", model=ALL, endpoint=ALL)
            ],
            y_title="USD / month",
        ),
        series_chart(
            data,
            "chart-cache-repeats",
            "Requests repeating an earlier prompt, by endpoint (all models)",
            "llm_cache_repeat_share",
            named(
                data, "llm_cache_repeat_share", ("model", "endpoint"), by=("endpoint",), model=ALL, endpoint="!" + ALL
            ),
            y_title="of requests",
            percent=True,
        ),
    ]
    return "<h2>Cost optimisation</h2>" + savings_table(data) + "".join(render(c) for c in charts)


def cost_page(data: ReportData) -> str:
    return cost(data, extra="" if data.empty or data.problem else optimisation_section(data))
