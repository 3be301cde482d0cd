"""The analyzers a run executes. Adding an analyzer is one entry here.

Each is a plain function ``(AnalysisContext) -> AnalyzerResult``; the flow runs
them as concurrent Prefect tasks, and one failing does not stop the others.
"""

from __future__ import annotations

from collections.abc import Callable

from aimon.records import AnalyzerResult
from aimon.tasks.abtest import analyze_abtest
from aimon.tasks.cost import analyze_cost
from aimon.tasks.drift import analyze_drift
from aimon.tasks.operational import analyze_operational
from aimon.tasks.orchestration.context import AnalysisContext
from aimon.tasks.quality import analyze_quality

Analyzer = Callable[[AnalysisContext], AnalyzerResult]

ANALYZERS: dict[str, Analyzer] = {
    "operational": analyze_operational,
    "cost": analyze_cost,
    "abtest": analyze_abtest,
    "quality": analyze_quality,
    "drift": analyze_drift,
}


def get_analyzer(name: str) -> Analyzer:
    try:
        return ANALYZERS[name]
    except KeyError:
        raise KeyError(f"unknown analyzer {name!r}; valid: {', '.join(ANALYZERS)}") from None
