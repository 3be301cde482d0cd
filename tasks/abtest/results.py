"""What an A/B analysis produces: one Comparison per variant and metric, one
ExperimentResult per experiment, and the status codes and texts both are reported
with. Kept apart from the code that computes them (looks.py) and the code that
reports them (records.py), which both need these types.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from aimon.stats.srm import SrmResult, SrmSpan

# ab_status / ab_metric_status values (docs: A/B experiments).
STATUS_CODES = {"collecting": 0, "improvement": 1, "regression": 2, "no_difference": 3, "invalid": 4}
STATUS_TEXT = {
    "collecting": "collecting data",
    "improvement": "significant improvement",
    "regression": "significant regression",
    "no_difference": "no significant difference",
    "invalid": "invalid (sample ratio mismatch)",
}

Key = tuple[str, str]  # (variant, metric)


@dataclass(frozen=True)
class Comparison:
    """One variant against the control on one metric, cumulative to the last look."""

    variant: str
    metric: str
    type: str
    good: str
    method: str  # e.g. "msprt on welch_t estimates" or "welch_t"
    n_control: int
    n_variant: int
    mean_control: float | None
    mean_variant: float | None
    diff: float | None = None  # variant - control, in the metric's unit (x scale)
    diff_ci: tuple[float, float] | None = None
    lift: float | None = None  # variant / control - 1
    lift_ci: tuple[float, float] | None = None
    p_value: float | None = None  # always-valid (sequential) or fixed-horizon
    p_adjusted: float | None = None
    needed_units: float | None = None  # experiment units for the MDE at the configured power
    mde: float = 0.0
    status: str = "collecting"
    reason: str | None = None  # why there is no test yet


@dataclass(frozen=True)
class ExperimentResult:
    """One experiment analysed over its looks: the split, the SRM check, the comparisons."""

    name: str
    status: str
    sequential: bool
    correction: str
    alpha: float
    looks: int  # windows analysed since the start
    first_window: dt.datetime | None
    units: dict[str, int]  # cumulative units (requests) per configured variant
    other_units: int  # rows of the experiment with an unconfigured variant value
    srm: SrmResult | None  # the cumulative split
    comparisons: tuple[Comparison, ...]
    needed_units: float | None  # units (all arms) the slowest non-significant comparison needs
    notes: tuple[str, ...] = field(default=())
    # The split over the last windows (exp.srm_spans); srm_mismatch: any span, the
    # cumulative one included, is off (each at srm_threshold / spans: Bonferroni).
    srm_recent: tuple[SrmSpan, ...] = field(default=())
    srm_mismatch: bool = False
    granularity: str = "daily"  # of the looks: names the spans (1d, 1w; 1h, 7h)

    @property
    def total_units(self) -> int:
        return sum(self.units.values())
