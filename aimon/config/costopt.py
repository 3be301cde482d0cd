"""Cost optimisation settings (aimon.tasks.costopt): where the money goes and what to
change. Under ``cost.optimisation`` in the YAML; every part can be switched off, and a
part the table cannot support (no prompt column, no quality figures, one model) is
skipped with the reason while the rest still runs.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from aimon.config.base import Strict, check_identifier


class CacheConfig(Strict):
    """Exact-match cache potential and the provider's prompt cache (needs `prompt`)."""

    enabled: bool = True
    # Earlier windows whose prompts a cache would still hold (0: repeats within the
    # window only). Each one is read again, so keep it small on big days.
    lookback_windows: int = Field(default=0, ge=0, le=31)
    # A regex replaced by "<var>" before hashing (template variables such as a date or
    # an order id), so prompts that differ only there count as repeats. Both engines'
    # regex dialects must accept it: keep to classes, quantifiers and alternation.
    template_pattern: str | None = None
    # Cacheable-prefix estimate: a request whose first `prefix_chars` characters repeat
    # an earlier request's is counted with that share of its input tokens.
    prefix_chars: int = Field(default=256, ge=16, le=100_000)
    # Fewer requests with a prompt on a (model, endpoint): no cache figure for it.
    min_requests: int = Field(default=100, ge=1)

    @field_validator("template_pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as err:
                raise ValueError(f"template_pattern {v!r} is not a valid regex: {err}") from None
            if "'" in v:
                raise ValueError("template_pattern must not contain a single quote")
        return v


class SwitchConfig(Strict):
    """Cheaper-model candidates per endpoint, judged on each quality figure's interval."""

    enabled: bool = True
    # The candidate's quality may be at most this much worse, relative to the current
    # model's: the lower end of the 95% interval of (candidate - current) / current must
    # be above -max_quality_drop for every quality figure both models have.
    max_quality_drop: float = Field(default=0.02, ge=0, lt=1)
    # Rows behind a quality figure, per model on the endpoint; fewer: not enough evidence.
    min_sample: int = Field(default=200, ge=10)
    # The quality evidence is pooled over this many windows ending with the current one
    # (bench/calibrate_switch.py: a 2% margin needs thousands of labelled rows per model).
    evidence_windows: int = Field(default=7, ge=1, le=90)


class GroupCost(Strict):
    """Cost per value of a grouping column (user, tenant, feature): the top N by cost,
    the rest folded into ``__other__``; budgets per value."""

    column: str  # a contract column (user_id, endpoint, experiment) or a column of the table
    top: int = Field(default=10, ge=1, le=200)
    period: Literal["day", "month"] = "month"
    budgets: dict[str, float] = Field(default_factory=dict)  # value -> USD per period

    @field_validator("column")
    @classmethod
    def _column(cls, v: str) -> str:
        return check_identifier(v, "cost.optimisation.groups column")

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, v: dict[str, float]) -> dict[str, float]:
        for key, usd in v.items():
            if usd <= 0:
                raise ValueError(f"budget for {key!r} must be positive, got {usd}")
        return v


class ForecastConfig(Strict):
    """Month-end spend forecast (aimon.stats.forecast): weekday-aware by default."""

    model: Literal["weekday", "linear"] = "weekday"
    # Days of stored spend the weekday factors and the level are learned from.
    history_days: int = Field(default=35, ge=7, le=120)
    interval: float = Field(default=0.9, gt=0.5, lt=1)  # central interval of the forecast


class CostOptimisationConfig(Strict):
    enabled: bool = True
    cache: CacheConfig = CacheConfig()
    switch: SwitchConfig = SwitchConfig()
    groups: tuple[GroupCost, ...] = ()
    # Share of the spend carried by the requests above this quantile of input tokens.
    long_prompt_quantile: float = Field(default=0.99, gt=0.5, lt=1)
    # finish_reason values that mean the output hit max_tokens.
    truncation_reasons: tuple[str, ...] = ("length", "max_tokens")
    # Recommendations are scaled from the window to this many days (a month).
    month_days: float = Field(default=30.0, gt=0)
    # Recommendations saving less than this per month are not listed.
    min_saving_usd: float = Field(default=1.0, ge=0)
