"""One YAML file, validated once into a frozen pydantic tree and passed down.

The tree, from the root: `Config` (aimon.config.root) holds one section per key;
the sections are in aimon.config.sources (warehouse, store, windows, reference,
pushgateway), aimon.config.analyses (pricing, budgets, experiments, quality, drift),
aimon.config.runtime (orchestration) and aimon.config.alerts; all derive from the
strict base in aimon.config.base. aimon.config.loader finds and reads the file.

Re-exported here: the loader's entry points and the sections other packages import.
"""

from aimon.config.analyses import (
    AB_DERIVED_COLUMNS,
    ABMetricConfig,
    BudgetConfig,
    CupedConfig,
    DriftConfig,
    EmbeddingDriftConfig,
    ExperimentConfig,
    PriceEntry,
    QualityConfig,
)
from aimon.config.loader import load_config, parse_config
from aimon.config.root import Config
from aimon.config.sources import (
    CONTRACT_COLUMNS,
    REQUIRED_COLUMNS,
    PushgatewayConfig,
    ReferenceConfig,
    WarehouseConfig,
)

__all__ = [
    "AB_DERIVED_COLUMNS",
    "CONTRACT_COLUMNS",
    "REQUIRED_COLUMNS",
    "ABMetricConfig",
    "BudgetConfig",
    "Config",
    "CupedConfig",
    "DriftConfig",
    "EmbeddingDriftConfig",
    "ExperimentConfig",
    "PriceEntry",
    "PushgatewayConfig",
    "QualityConfig",
    "ReferenceConfig",
    "WarehouseConfig",
    "load_config",
    "parse_config",
]
