"""Recommendations: what to change, the dollars a month it would save at the window's
rate, the evidence and a confidence. Ranked by dollars; stored as
``llm_cost_saving_usd{kind, model, endpoint[, candidate]}`` (and per kind over all
models and endpoints) so Grafana and the alert rules see them like any figure; kept as
plain dicts in the analyzer's details for the run summary and the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from aimon.records import ALL, MetricRecord

KINDS = ("cache", "prompt_cache", "model_switch")


@dataclass(frozen=True)
class Recommendation:
    kind: str  # one of KINDS
    action: str  # "cache summarize prompts on gpt-4o"
    monthly_usd: float
    evidence: str
    confidence: str  # high | medium | low
    labels: dict[str, str] = field(default_factory=dict)  # model, endpoint (and candidate)

    def line(self) -> str:
        return f"{self.action}: ~${self.monthly_usd:,.0f}/month ({self.confidence} confidence; {self.evidence})"


def ranked(recs: Sequence[Recommendation], min_usd: float) -> list[Recommendation]:
    return sorted((r for r in recs if r.monthly_usd >= min_usd), key=lambda r: (-r.monthly_usd, r.action))


def saving_records(recs: Sequence[Recommendation]) -> list[MetricRecord]:
    out = [MetricRecord.of("llm_cost_saving_usd", r.monthly_usd, kind=r.kind, **r.labels) for r in recs]
    for kind in KINDS:
        mine = [r.monthly_usd for r in recs if r.kind == kind]
        if mine:
            # Different endpoints' savings add up; two switches for one model's traffic
            # never both appear (the best candidate is kept).
            out.append(MetricRecord.of("llm_cost_saving_usd", sum(mine), kind=kind, model=ALL, endpoint=ALL))
    return out


def as_details(recs: Sequence[Recommendation]) -> list[dict[str, object]]:
    return [asdict(r) for r in recs]
