"""What every quality family returns: a `Figure` (value and the rows behind it) and a
`Family` (figures, other records, notes, details). Their own module because every
family and the analyzer share them and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aimon.records import MetricRecord


@dataclass(frozen=True)
class Figure:
    """One quality figure and the number of rows (pairs, queries, ratings) behind it."""

    metric: str
    labels: tuple[tuple[str, str], ...]
    value: float
    n: int

    @classmethod
    def of(cls, metric: str, value: float, n: int, **labels: Any) -> Figure:
        return cls(metric, tuple(sorted((k, str(v)) for k, v in labels.items())), float(value), int(n))


@dataclass
class Family:
    """What one family found: figures with sample sizes, other records, notes."""

    figures: list[Figure] = field(default_factory=list)
    extra: list[MetricRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
