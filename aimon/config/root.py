"""`Config`, the top-level model: one field per YAML section, and the checks that
span sections (budget scopes, experiment names).

Its own module so the tree reads from the root down (sources, analyses, runtime,
alerts) and the loader only loads; docs/hooks.py walks this model to generate the
configuration reference.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from aimon.config.alerts import AlertsConfig
from aimon.config.analyses import BudgetConfig, CostConfig, DriftConfig, ExperimentConfig, PriceEntry, QualityConfig
from aimon.config.base import Strict
from aimon.config.deployments import DeploymentsConfig
from aimon.config.runtime import CaptureConfig, OrchestrationConfig, ReportConfig, TracingConfig
from aimon.config.slos import SLOs
from aimon.config.sources import (
    ContractConfig,
    PushgatewayConfig,
    ReferenceConfig,
    StoreConfig,
    WarehouseConfig,
    WindowsConfig,
)


class Config(Strict):
    warehouse: WarehouseConfig
    store: StoreConfig = StoreConfig()
    windows: WindowsConfig = WindowsConfig()
    reference: ReferenceConfig = ReferenceConfig()
    pricing: tuple[PriceEntry, ...] = ()
    budgets: tuple[BudgetConfig, ...] = ()
    cost: CostConfig = CostConfig()
    contract: ContractConfig = ContractConfig()
    pushgateway: PushgatewayConfig = PushgatewayConfig()
    experiments: tuple[ExperimentConfig, ...] = ()
    orchestration: OrchestrationConfig = OrchestrationConfig()
    alerts: AlertsConfig = AlertsConfig()  # rules, routes, channels (aimon.config.alerts)
    quality: QualityConfig = QualityConfig()
    drift: DriftConfig = DriftConfig()
    report: ReportConfig = ReportConfig()  # the HTML report (aimon.report)
    tracing: TracingConfig = TracingConfig()  # OpenTelemetry spans of each run (aimon.tasks.tracing)
    capture: CaptureConfig = CaptureConfig()  # the logger in the monitored app (aimon.capture)
    deployments: DeploymentsConfig = DeploymentsConfig()  # planned changes and their checks (aimon.tasks.deploy)
    slos: SLOs = ()  # service level objectives and burn-rate checks (aimon.config.slos)

    # Where the file came from, for messages; not a YAML key.
    source: str = Field(default="<memory>", exclude=True)

    @model_validator(mode="after")
    def _unique_budget_scopes(self) -> Config:
        seen = set()
        for b in self.budgets:
            if (b.scope, b.period) in seen:
                raise ValueError(f"budgets: scope {b.scope!r} has two {b.period} budgets")
            seen.add((b.scope, b.period))
        return self

    @model_validator(mode="after")
    def _unique_experiments(self) -> Config:
        names = [e.name for e in self.experiments]
        if len(set(names)) != len(names):
            raise ValueError("experiments: names must be unique")
        return self

    @property
    def store_url(self) -> str:
        return self.store.url or self.warehouse.url
