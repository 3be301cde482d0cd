"""The small, frozen results that tasks pass to each other (never big frames)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

ALL = "__all__"  # label value of a roll-up: llm_requests{model="__all__"} is every model


@dataclass(frozen=True)
class MetricRecord:
    metric: str
    labels: tuple[tuple[str, str], ...]
    value: float

    @classmethod
    def of(cls, metric: str, value: float, /, **labels: Any) -> MetricRecord:
        # Positional-only, so `metric` can also be a label (quality_sample_size{metric=...}).
        return cls(metric, tuple(sorted((k, str(v)) for k, v in labels.items())), float(value))

    @property
    def labels_json(self) -> str:
        return labels_json(dict(self.labels))

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


def labels_json(labels: dict[str, str]) -> str:
    """The metrics table's `labels` column: JSON with sorted keys, no spaces."""
    return json.dumps(labels, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class AnalyzerResult:
    """What one analyzer found: figures for the store, notes and details for the report."""

    name: str
    records: tuple[MetricRecord, ...]
    notes: tuple[str, ...] = ()  # one-line findings for the summary ("no latency column")
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the analyzer, set by the runner
    started: float = 0.0  # when it started (epoch seconds), set by the runner: its trace span
