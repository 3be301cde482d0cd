"""What a run will compute with this config and this table, before it runs: per
analyzer, run or skipped and why, and the alert rules whose metric no run can produce.

`aimon config check` prints it. The conditions are the analyzers' own skip conditions
(each cited beside its part below); they are restated here rather than imported because
importing the analyzers loads sklearn, Evidently and Prefect, which a config check does
not need. A change to an analyzer's skip condition belongs here too
(tests/test_cli_failures.py checks what `config check` prints for them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from dataclasses import dataclass

import sqlalchemy as sa

from aimon.catalogue import METRICS, PROMETHEUS_OWN
from aimon.config import Config
from aimon.warehouse import Interactions, Warehouse

ANALYZER_ORDER = ("operational", "cost", "drift", "quality", "abtest", "deploy", "slo")
TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cached_input_tokens")  # aimon.tasks.cost.TOKEN_TYPES


@dataclass(frozen=True)
class Part:
    """One thing an analyzer computes, the metrics it produces, and why it cannot (None: it can)."""

    analyzer: str
    name: str
    metrics: tuple[str, ...]  # names, or prefixes ending in "_"
    missing: str | None

    def produces(self, metric: str) -> bool:
        return any(metric == m or (m.endswith("_") and metric.startswith(m)) for m in self.metrics)


@dataclass(frozen=True)
class AnalyzerPlan:
    name: str
    status: str  # run | skipped | fails (a run would fail it: a config error the run finds)
    why: str  # what it computes, or why it is skipped or fails
    without: tuple[str, ...] = ()  # parts it skips while running: "latency quantiles (no latency_seconds column)"


@dataclass(frozen=True)
class UnjudgedRule:
    rule: str
    metric: str
    why: str


@dataclass(frozen=True)
class RunPlan:
    analyzers: tuple[AnalyzerPlan, ...]
    unjudged: tuple[UnjudgedRule, ...]
    notes: tuple[str, ...] = ()  # e.g. models seen lately that have no price


def _no(ix: Interactions, *cols: str) -> str | None:
    absent = [c for c in cols if not ix.has(c)]
    return f"no {' or '.join(absent)} column" if absent else None


def _feedback(cfg: Config, ix: Interactions) -> str | None:  # aimon.tasks.quality.feedback.feedback_family
    if not cfg.warehouse.feedback_table:
        return "no warehouse.feedback_table configured"
    return "no request_id column to join feedback on" if not ix.has("request_id") else None


def _spend(cfg: Config, ix: Interactions) -> str | None:  # aimon.tasks.cost: cost_usd, else tokens x pricing
    if ix.has("cost_usd"):
        return None
    if not any(ix.has(c) for c in TOKEN_COLUMNS):
        return "neither cost_usd nor token columns"
    return "no cost_usd column and no pricing entries" if not cfg.pricing else None


def _embedding(cfg: Config, ix: Interactions) -> str | None:  # aimon.tasks.drift.features._embedding_col
    e = cfg.drift.embeddings
    if e is None:
        return "drift.embeddings is off"
    present = e.column in ix.present or e.column in ix.all_columns
    return None if present else f"no {e.column!r} column (drift.embeddings.column)"


def _experiments(cfg: Config, ix: Interactions) -> str | None:  # aimon.tasks.abtest.analyzer.analyze_abtest
    if not cfg.experiments:
        return "no experiments configured"
    return _no(ix, "experiment", "variant")


def _slos(cfg: Config, ix: Interactions) -> str | None:  # aimon.tasks.slo.window_counts
    if not cfg.slos:
        return "no slos configured"
    if all(s.sli.type == "latency" for s in cfg.slos):
        return _no(ix, "latency_seconds")  # the latency SLOs are skipped without it
    return None


PartCheck = Callable[[Config, Interactions], "str | None"]

# (analyzer, part, metrics, why it cannot run); the analyzers' own conditions, cited.
PARTS: tuple[tuple[str, str, tuple[str, ...], PartCheck], ...] = (
    # aimon.tasks.operational: timestamp, model and status are required by the contract
    ("operational", "requests and errors", ("llm_requests", "llm_requests_per_minute", "llm_errors", "llm_error_rate"),
     lambda c, ix: None),
    ("operational", "latency quantiles", ("llm_latency_seconds",), lambda c, ix: _no(ix, "latency_seconds")),
    # aimon.tasks.cost.analyze_cost: skipped without token columns and cost_usd
    ("cost", "tokens", ("llm_tokens",),
     lambda c, ix: None if any(ix.has(t) for t in TOKEN_COLUMNS) else "no token columns"),
    ("cost", "spend", ("llm_cost_usd", "llm_unpriced_requests", "llm_cost_forecast_usd"), _spend),
    ("cost", "budgets", ("llm_budget_",),
     lambda c, ix: _spend(c, ix) or (None if c.budgets else "no budgets configured")),
    # aimon.tasks.drift.features.feature_specs: built-ins (model and error type always), drift.features
    ("drift", "feature drift", ("data_drift_",),
     lambda c, ix: None if c.drift.builtins or c.drift.features else "drift.builtins is off and no drift.features"),
    ("drift", "embedding drift", ("embedding_",), _embedding),
    # aimon.tasks.quality: each family checks its own columns
    ("quality", "classification", ("model_accuracy", "model_f1", "model_precision", "model_recall",
                                   "quality_label_"), lambda c, ix: _no(ix, "label", "prediction")),
    ("quality", "generation (ROUGE, BLEU)", ("generation_",), lambda c, ix: _no(ix, "reference", "response")),
    ("quality", "RAG retrieval", ("rag_",), lambda c, ix: _no(ix, "retrieved_ids", "relevant_ids")),
    ("quality", "feedback", ("feedback_",), _feedback),
    ("abtest", "experiments", ("ab_",), _experiments),
    # aimon.tasks.deploy.analyze_deployments: nothing with deployments.enabled false
    ("deploy", "deployments and post-deployment checks", ("deploy_", "deployment_"),
     lambda c, ix: None if c.deployments.enabled else "deployments.enabled is false"),
    # aimon.tasks.slo.analyze_slo: nothing without slos; a latency SLO needs latency_seconds
    ("slo", "SLO burn rates", ("slo_",), _slos),
)  # fmt: skip


def parts(cfg: Config, ix: Interactions) -> list[Part]:
    return [Part(a, name, metrics, check(cfg, ix)) for a, name, metrics, check in PARTS]


def _drift_feature_problems(cfg: Config, ix: Interactions) -> list[str]:
    """drift.features naming a column the table lacks: the drift analyzer fails on them."""
    return [
        f"drift.features[{i}] names column {f.name!r}, which table {ix.table.name!r} lacks"
        for i, f in enumerate(cfg.drift.features)
        if f.name not in ix.all_columns
    ]


def plan_run(cfg: Config, ix: Interactions, models: Collection[str] | None = None) -> RunPlan:
    """Per analyzer, run or skipped and why; the rules no run can judge. `models`: the
    models seen lately, to name those without a price."""
    ps = parts(cfg, ix)
    plans = []
    for name in ANALYZER_ORDER:
        mine = [p for p in ps if p.analyzer == name]
        able = [p for p in mine if p.missing is None]
        failing = _drift_feature_problems(cfg, ix) if name == "drift" else []
        if failing:
            plans.append(AnalyzerPlan(name, "fails", f"{'; '.join(failing)}: fix drift.features"))
        elif able:
            without = tuple(f"{p.name} ({p.missing})" for p in mine if p.missing is not None)
            plans.append(AnalyzerPlan(name, "run", ", ".join(p.name for p in able), without))
        else:
            reasons = dict.fromkeys(p.missing for p in mine if p.missing)
            plans.append(AnalyzerPlan(name, "skipped", "; ".join(r for r in reasons if r)))
    unjudged = []
    for rule in cfg.alerts.rules:
        part = next((p for p in ps if p.produces(rule.metric)), None)
        if part is not None and part.missing is not None:
            why = f"{part.analyzer} computes no {part.name}: {part.missing}"
            unjudged.append(UnjudgedRule(rule.name, rule.metric, why))
        elif part is None and rule.metric not in METRICS and rule.metric not in PROMETHEUS_OWN:
            why = "not a metric aimon computes (docs: metric reference)"
            unjudged.append(UnjudgedRule(rule.name, rule.metric, why))
    notes = []
    if models is not None and _spend(cfg, ix) is None and not ix.has("cost_usd"):
        priced = {p.model for p in cfg.pricing}
        unpriced = sorted(m for m in models if m not in priced)
        if unpriced:
            notes.append(
                f"no price for {', '.join(unpriced)} (seen in the last week): their requests are left out of "
                "llm_cost_usd; add them to pricing"
            )
    return RunPlan(tuple(plans), tuple(unjudged), tuple(notes))


def recent_models(wh: Warehouse, ix: Interactions, days: int = 7, limit: int = 200) -> list[str] | None:
    """The models of the last `days` days (naive UTC), or None when the table cannot
    say (a timestamp the engine cannot compare): the price check is then left out."""
    since = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=days)
    model = ix.req("model")
    stmt = (
        sa.select(model.label("model"))
        .where(ix.req("timestamp") >= sa.bindparam("since", type_=sa.DateTime))
        .group_by(model)
        .limit(limit)
    )
    try:
        return [str(r["model"]) for r in wh.fetch(stmt, {"since": since}) if r["model"] is not None]
    except sa.exc.SQLAlchemyError:
        return None
