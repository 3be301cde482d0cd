"""The analyzers a run executes. Adding an analyzer is one entry here.

Each is a plain function ``(AnalysisContext) -> AnalyzerResult``. The table is read-only:
the flow (aimon.flows.monitor) hands it to the orchestration, which runs every entry as
a concurrent Prefect task, one failing not stopping the others; a flow built with
another table (``monitor_flow({...})``) runs that one instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from aimon.tasks.abtest import analyze_abtest
from aimon.tasks.cost import analyze_cost
from aimon.tasks.costopt import analyze_costopt
from aimon.tasks.deploy import analyze_deployments
from aimon.tasks.drift import analyze_drift
from aimon.tasks.operational import analyze_operational
from aimon.tasks.orchestration.context import Analyzer
from aimon.tasks.quality import analyze_quality
from aimon.tasks.slo import analyze_slo

Analyzers = Mapping[str, Analyzer]

ANALYZERS: Analyzers = MappingProxyType(
    {
        "operational": analyze_operational,
        "cost": analyze_cost,
        "costopt": analyze_costopt,
        "abtest": analyze_abtest,
        "quality": analyze_quality,
        "drift": analyze_drift,
        "deploy": analyze_deployments,
        "slo": analyze_slo,
    }
)
