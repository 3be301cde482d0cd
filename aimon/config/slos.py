"""The `slos:` section: service level objectives, and the burn-rate arithmetic of the
Google SRE workbook's multiwindow, multi-burn-rate alerts (docs/slos.md).

An SLO is a share of good events over a rolling period (28 or 30 days): availability
(requests that did not fail) or latency (requests at or under a threshold). Its error
budget is ``1 - objective`` of the period's events. The burn rate over a span is the
span's error ratio divided by the budget: 1 spends exactly the budget by the period's
end, 14.4 spends a 30-day budget in about two days.

The arithmetic lives here, below both users: the analyzer (aimon.tasks.slo) judges
stored windows with it and `aimon slo rules` writes the same checks as Prometheus rules.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from aimon.config.base import Strict

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,99}$")
_PERIOD = re.compile(r"^([1-9][0-9]{0,2})d$")
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
GRANULARITY_SPAN = {"hourly": HOUR, "daily": DAY}  # one window of each granularity


class AvailabilitySLI(Strict):
    """Good events: requests whose status is ok; events: every accepted request."""

    type: Literal["availability"]


class LatencySLI(Strict):
    """Good events: requests with latency_seconds <= threshold_seconds; events: every
    accepted request with a latency (a failed request counts by its latency too)."""

    type: Literal["latency"]
    threshold_seconds: float = Field(gt=0)


SLI = Annotated[AvailabilitySLI | LatencySLI, Field(discriminator="type")]


class SLOConfig(Strict):
    """One objective, judged on every window of every granularity that runs."""

    name: str  # the `slo` label of the slo_* figures and Prometheus rules
    objective: float = Field(gt=0, lt=1)  # e.g. 0.995: 99.5% of events are good
    period: str = "30d"  # the rolling period of the error budget: 28d or 30d are usual
    sli: SLI
    model: str | None = None  # only this model's requests; None: every model
    endpoint: str | None = None  # only this endpoint's requests; None: every endpoint
    description: str | None = None  # shown in `aimon slo rules` output and notifications
    # A burn check with fewer events in its short span does not fire (too little evidence:
    # 2 failures out of 5 requests is a 40% error ratio).
    min_events: int = Field(default=100, ge=0)

    @field_validator("name")
    @classmethod
    def _n(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"slo name {v!r}: use letters, digits, _, . and - (starting with a letter or _)")
        return v

    @field_validator("period")
    @classmethod
    def _p(cls, v: str) -> str:
        m = _PERIOD.match(str(v).strip())
        if not m or not 7 <= int(m.group(1)) <= 366:
            raise ValueError(f"period {v!r}: use a whole number of days from 7d to 366d, e.g. 28d or 30d")
        return f"{int(m.group(1))}d"

    @property
    def period_delta(self) -> dt.timedelta:
        return dt.timedelta(days=int(self.period[:-1]))

    @property
    def error_budget(self) -> float:
        """The share of events allowed to be bad."""
        return round(1.0 - self.objective, 12)  # 1 - 0.9 is 0.09999999999999998


def _unique(slos: tuple[SLOConfig, ...]) -> tuple[SLOConfig, ...]:
    names = [s.name for s in slos]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"slos: names must be unique ({', '.join(dupes)} appears twice)")
    return slos


SLOs = Annotated[tuple[SLOConfig, ...], AfterValidator(_unique)]


# -- burn-rate checks (the workbook's table) -------------------------------------------


@dataclass(frozen=True)
class WorkbookRow:
    """One row of the workbook's recommended alerts: `budget_share` of the error budget
    spent within `long`; `short` (1/12 of long) confirms the burn is still going on."""

    name: str  # fast | slow | ticket
    tier: Literal["page", "ticket"]
    budget_share: float
    long: dt.timedelta
    short: dt.timedelta

    def factor(self, period: dt.timedelta) -> float:
        """The burn rate that spends `budget_share` of the budget in `long`:
        share x period / long (2% of 30 days in 1 h: 0.02 x 720 h / 1 h = 14.4)."""
        return round(self.budget_share * (period / self.long), 6)


WORKBOOK: tuple[WorkbookRow, ...] = (
    WorkbookRow("fast", "page", 0.02, HOUR, dt.timedelta(minutes=5)),
    WorkbookRow("slow", "page", 0.05, 6 * HOUR, dt.timedelta(minutes=30)),
    WorkbookRow("ticket", "ticket", 0.10, 3 * DAY, 6 * HOUR),
)
TIERS = ("page", "ticket")


@dataclass(frozen=True)
class BurnCheck:
    """One check as aimon runs it on windows of one granularity: fires when the burn
    rate over both spans exceeds `factor` (and the short span holds enough events)."""

    row: WorkbookRow
    long: dt.timedelta
    short: dt.timedelta
    factor: float

    @property
    def tier(self) -> str:
        return self.row.tier


def whole_windows(span: dt.timedelta, granularity: str) -> dt.timedelta:
    """`span` rounded up to whole windows: nothing shorter than a window can be seen."""
    w = GRANULARITY_SPAN[granularity]
    n = max(1, -(-span // w))  # ceiling division of timedeltas
    return n * w


def burn_checks(period: dt.timedelta, granularity: str) -> list[BurnCheck]:
    """The workbook's rows on windows of `granularity`: each factor is the workbook's
    (for this period), each span rounded up to whole windows (hourly: fast 1h/1h,
    slow 6h/1h, ticket 3d/6h; daily: fast and slow 1d/1d, ticket 3d/1d)."""
    return [
        BurnCheck(r, whole_windows(r.long, granularity), whole_windows(r.short, granularity), r.factor(period))
        for r in WORKBOOK
    ]


def spans(checks: Sequence[BurnCheck]) -> list[dt.timedelta]:
    """The distinct spans the checks read, shortest first."""
    return sorted({s for c in checks for s in (c.short, c.long)})


def span_label(span: dt.timedelta) -> str:
    """'1h', '6h', '1d', '3d' (the `span` label, and Prometheus's range syntax)."""
    secs = int(span.total_seconds())
    if secs % 86400 == 0:
        return f"{secs // 86400}d"
    if secs % 3600 == 0:
        return f"{secs // 3600}h"
    return f"{secs // 60}m"
