"""The concern pages built from stored series: traffic, errors and latency; cost and
budgets; quality."""

from __future__ import annotations

from collections.abc import Sequence

from aimon.records import ALL
from aimon.report.charts import Chart, render, slug
from aimon.report.data import Points, ReportData
from aimon.report.figures import series_chart, trace_of
from aimon.report.shell import notice, page

Series = list[tuple[str, dict[str, str], Points]]


def named(
    data: ReportData, metric: str, keys: tuple[str, ...] | None = None, by: Sequence[str] = ("model",), **want: str
) -> Series:
    """The series of `metric`, each named by its `by` labels (`__all__` reads "all")."""
    out = []
    for labels, points in data.series(metric, keys, **want):
        name = ", ".join(("all" if labels.get(k) == ALL else labels.get(k, "")) for k in by) or metric
        out.append((name, labels, points))
    return out


def empty_page(data: ReportData, title: str, here: str) -> str | None:
    """The page of a report with nothing to show: says why (no store, no windows)."""
    if data.problem:
        return page(data, title, notice(data.problem), here=here, charts=False)
    if data.empty:
        return page(
            data,
            title,
            notice(f"no {data.granularity} windows monitored in {data.range_text}"),
            here=here,
            charts=False,
        )
    return None


def operational(data: ReportData) -> str:
    here, title = "operational.html", "Traffic, errors, latency"
    if (p := empty_page(data, title, here)) is not None:
        return p
    mk = ("model", "endpoint")
    charts = [
        series_chart(
            data,
            "chart-requests",
            "Requests per window, by model",
            "llm_requests",
            named(data, "llm_requests", mk, endpoint=ALL),
            y_title="requests",
        ),
        series_chart(
            data,
            "chart-error-rate",
            "Error rate, by model (all endpoints)",
            "llm_error_rate",
            named(data, "llm_error_rate", mk, endpoint=ALL),
            y_title="errors / requests",
            percent=True,
        ),
        series_chart(
            data,
            "chart-latency",
            "Latency p50 / p95 / p99, all requests",
            "llm_latency_seconds",
            named(data, "llm_latency_seconds", (*mk, "quantile"), by=("quantile",), model=ALL, endpoint=ALL),
            y_title="seconds",
        ),
        series_chart(
            data,
            "chart-latency-p95",
            "Latency p95 by model (all endpoints)",
            "llm_latency_seconds",
            named(data, "llm_latency_seconds", (*mk, "quantile"), model="!" + ALL, endpoint=ALL, quantile="0.95"),
            y_title="seconds",
            caption="Rules judging each model and endpoint apart: the series that fired are on the Alerts page "
            "with their bound.",
        ),
        series_chart(
            data,
            "chart-errors-by-type",
            "Failed requests by error type",
            "llm_errors",
            named(
                data,
                "llm_errors",
                (*mk, "error_type"),
                by=("error_type",),
                model=ALL,
                endpoint=ALL,
                error_type="!" + ALL,
            ),
            y_title="requests",
            bars=True,
        ),
    ]
    return page(data, title, "".join(render(c) for c in charts), here=here)


def _month_spend(data: ReportData) -> list[Chart]:
    """Per monthly budget: spend so far, the month-end forecast and the budget."""
    out = []
    for labels, budget in data.series("llm_budget_usd", period="month"):
        scope = labels.get("scope", "")
        ratio = data.one("llm_budget_used_ratio", **labels)
        spent = {s: ratio[s] * budget[s] for s in ratio if s in budget}
        c = Chart(f"chart-budget-{slug(scope)}", f"Month-to-date spend, forecast and budget: {scope}", "USD")
        c.traces = [
            trace_of(data, "spent this month", spent),
            trace_of(
                data, "month-end forecast (llm_cost_forecast_usd)", data.one("llm_cost_forecast_usd", scope=scope)
            ),
            trace_of(data, "forecast interval low", data.one("llm_cost_forecast_usd_low", scope=scope), "ci_low"),
            trace_of(data, "forecast interval", data.one("llm_cost_forecast_usd_high", scope=scope), "ci_high"),
            trace_of(data, "budget", budget, "threshold"),
        ]
        c.caption = (
            "Spend so far = llm_budget_used_ratio x llm_budget_usd; the forecast (cost.forecast) learns weekday "
            "effects and the trend from the stored days, the band is its 90% interval."
        )
        out.append(c)
    if not out:
        out.append(
            Chart(
                "chart-budget",
                "Month-to-date spend, forecast and budget",
                empty="no monthly budget configured (budgets: in the config), or no cost figures stored",
            )
        )
    return out


def cost(data: ReportData, extra: str = "") -> str:
    """The cost page; `extra`: HTML after its charts (the optimisation section)."""
    here, title = "cost.html", "Cost and budgets"
    if (p := empty_page(data, title, here)) is not None:
        return p
    mk = ("model", "endpoint")
    charts = [
        series_chart(
            data,
            "chart-cost-by-model",
            "Cost per window by model (USD)",
            "llm_cost_usd",
            named(data, "llm_cost_usd", mk, endpoint=ALL, model="!" + ALL),
            y_title="USD",
            bars=True,
            caption="Stacked: the bars add up to the window's spend.",
        ),
        series_chart(
            data,
            "chart-budget-used",
            "Budget used",
            "llm_budget_used_ratio",
            named(data, "llm_budget_used_ratio", by=("scope", "period")),
            y_title="of the budget",
            percent=True,
        ),
        *_month_spend(data),
        series_chart(
            data,
            "chart-tokens",
            "Tokens by type, all requests",
            "llm_tokens",
            named(data, "llm_tokens", (*mk, "type"), by=("type",), model=ALL, endpoint=ALL),
            y_title="tokens",
        ),
        series_chart(
            data,
            "chart-unpriced",
            "Requests without a price, by model",
            "llm_unpriced_requests",
            named(data, "llm_unpriced_requests", ("model",), model="!" + ALL),
            y_title="requests",
        ),
    ]
    return page(data, title, "".join(render(c) for c in charts) + extra, here=here)


def quality(data: ReportData) -> str:
    here, title = "quality.html", "Quality"
    if (p := empty_page(data, title, here)) is not None:
        return p
    charts = [
        series_chart(
            data,
            "chart-f1",
            "F1 (weighted) by model",
            "model_f1",
            named(data, "model_f1", ("average", "model"), average="weighted"),
            y_title="F1",
        ),
        series_chart(
            data,
            "chart-f1-macro",
            "F1 (macro) by model",
            "model_f1",
            named(data, "model_f1", ("average", "model"), average="macro"),
            y_title="F1",
        ),
        series_chart(
            data,
            "chart-accuracy",
            "Accuracy by model",
            "model_accuracy",
            named(data, "model_accuracy", ("model",)),
            y_title="accuracy",
        ),
        series_chart(
            data,
            "chart-rouge",
            "ROUGE-L by model",
            "generation_rouge",
            named(data, "generation_rouge", ("model", "variant"), variant="rougeL"),
            y_title="ROUGE-L F",
        ),
        series_chart(
            data,
            "chart-bleu",
            "BLEU by model",
            "generation_bleu",
            named(data, "generation_bleu", ("model",)),
            y_title="BLEU",
        ),
    ]
    for metric, what in (
        ("rag_precision_at_k", "precision@k"),
        ("rag_recall_at_k", "recall@k"),
        ("rag_ndcg_at_k", "NDCG@k"),
    ):
        s = sorted(named(data, metric, ("k",), by=("k",)), key=lambda t: int(t[0]) if t[0].isdigit() else 0)
        charts.append(
            series_chart(
                data,
                f"chart-{slug(metric)}",
                f"RAG retrieval {what}",
                metric,
                [(f"k={n}", lab, p) for n, lab, p in s],
                y_title=what,
            )
        )
    charts += [
        series_chart(
            data,
            "chart-rag-mrr",
            "RAG mean reciprocal rank",
            "rag_mrr",
            [("MRR", lab, p) for lab, p in data.series("rag_mrr", ())],
            y_title="MRR",
        ),
        series_chart(
            data,
            "chart-rating",
            "Mean user rating by model",
            "feedback_rating_mean",
            named(data, "feedback_rating_mean", ("model",)),
            y_title="rating (1-5)",
        ),
        series_chart(
            data,
            "chart-helpful",
            "Share of feedback marked helpful, by model",
            "feedback_helpful_ratio",
            named(data, "feedback_helpful_ratio", ("model",)),
            y_title="helpful",
            percent=True,
        ),
    ]
    return page(data, title, "".join(render(c) for c in charts), here=here)
