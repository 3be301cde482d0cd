"""The parts of an alert rule that judge a window against the series' own history
(`baseline:`, `min_sample:`, `unless:`), and the bound they give (aimon.config.alerts
AlertRule.bound_of; docs/alerts.md, "Learned bounds and minimum evidence")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from aimon.config.base import Strict
from aimon.matchers import Matcher


class BaselineCondition(Strict):
    """Compare with the same figure over the previous N windows.

    `method: ratio` (the default): the bound is the median of those windows times
    `factor`, or `percent` above/below it. `method: learned`: the bound is the series'
    own centre plus/minus `k` robust standard deviations of its window-to-window values
    (aimon.stats.bounds.learn), never closer to the centre than `factor`/`percent` when
    one is given. Windows where this series' alert was pending, firing or folded are
    left out (`exclude_alerting`), older ones taken instead, up to `lookback` windows
    back, so an incident never becomes its own baseline. docs/alerts.md, "Learned
    bounds and minimum evidence"."""

    method: Literal["ratio", "learned"] = "ratio"
    windows: int = Field(default=7, ge=1, le=1000)  # default 28 with method: learned
    min_windows: int = Field(default=3, ge=1)  # fewer stored windows: the rule cannot judge, does not fire
    # learned: windows needed to learn the spread; with fewer (but min_windows) only the
    # factor/percent floor applies (a learned rule without one is not judged until then).
    learn_windows: int = Field(default=7, ge=2)
    # learned, before learn_windows: the floor's margin over the highest (lowest) window
    # times this (1.5x with 2.0: 2x the highest window), as drift's cold start: the
    # window-to-window spread is not known yet, and a noisy first weekend is not a spike.
    cold_start_factor: float = Field(default=2.0, ge=1.0)
    # Fewer than min_windows stored: not judged (a spike rule cannot tell a spike from a
    # first day), or, for a rule whose threshold alone is a page (an error rate above 5%),
    # judged by the threshold alone.
    short_history: Literal["not_judged", "threshold"] = "not_judged"
    factor: float | None = Field(default=None, gt=0)  # '>' with factor 1.5: above 1.5x the median
    percent: float | None = Field(default=None, ge=0)  # '>' with 20: 20% above; '<' with 20: 20% below
    # learned: how many (robust, trimmed) standard deviations from the centre.
    k: float = Field(default=5.0, gt=0)
    # learned, daily (hourly) windows: centre on the same weekday's (hour's) windows when
    # at least 3 of them are in the history, so weekly (daily) seasonality does not page.
    seasonal: bool = True
    # learned: the spread is at least this share of |centre| (a constant history) ...
    min_spread_percent: float = Field(default=1.0, ge=0)
    min_spread: float = Field(default=0.0, ge=0)  # ... and at least this absolute amount
    # learned: the scale the spread is learned on. log: centre x exp(+/- k x spread of the
    # log values), for noise that is a multiple of the level (spend, latency, counts);
    # linear: centre +/- k x spread. auto: log when every history value is > 0 and the
    # rule has no `uncertainty` (a proportion's sampling error adds, it does not multiply).
    scale: Literal["auto", "log", "linear"] = "auto"
    # Leave out windows where this series' alert was pending, firing or folded.
    exclude_alerting: bool = True
    # How far back to look for `windows` windows without the alert; default 3 x windows.
    lookback: int | None = Field(default=None, ge=1, le=3000)
    # binomial: for a proportion (accuracy, F1, helpful ratio) a change must also exceed
    # z x sqrt(p(1-p)/n_window + p(1-p)/n_baseline), n from the rule's min_sample metric.
    uncertainty: Literal["binomial"] | None = None
    z: float = Field(default=3.5, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("method") == "learned":
            data = {"windows": 28, **data}
        return data

    @model_validator(mode="after")
    def _one(self) -> BaselineCondition:
        if self.method == "ratio":
            if (self.factor is None) == (self.percent is None):
                raise ValueError("a baseline needs exactly one of factor or percent (or method: learned)")
            learned_only = {
                "k",
                "seasonal",
                "min_spread_percent",
                "min_spread",
                "learn_windows",
                "cold_start_factor",
                "scale",
            }
            learned_only &= self.model_fields_set
            if learned_only:
                raise ValueError(f"{', '.join(sorted(learned_only))}: only with method: learned")
        elif self.factor is not None and self.percent is not None:
            raise ValueError("a learned baseline takes at most one of factor or percent (its floor)")
        if self.min_windows > self.windows:
            raise ValueError(f"min_windows ({self.min_windows}) is more than windows ({self.windows})")
        if self.lookback is not None and self.lookback < self.windows:
            raise ValueError(f"lookback ({self.lookback}) is less than windows ({self.windows})")
        if "z" in self.model_fields_set and self.uncertainty is None:
            raise ValueError("z: only with uncertainty: binomial")
        return self

    @property
    def floor(self) -> bool:
        return self.factor is not None or self.percent is not None

    @property
    def needed(self) -> int:
        """Previous windows needed to judge at all (a learned rule without a floor needs
        learn_windows)."""
        if self.method == "learned" and not self.floor:
            return max(self.min_windows, self.learn_windows)
        return self.min_windows

    @property
    def span(self) -> int:
        """Windows looked back at most (for `windows` windows without the alert)."""
        if not self.exclude_alerting:
            return self.windows
        return self.lookback if self.lookback is not None else 3 * self.windows


class MinSample(Strict):
    """Minimum evidence: the figure of `metric` with the series' labels (on the label keys
    both carry; a `metric` label must name the rule's metric, as quality_sample_size's
    does) is the n behind the series. Below `value` the series is not judged."""

    metric: str  # e.g. llm_requests, quality_sample_size
    value: float = Field(gt=0)


class Unless(Strict):
    """PromQL's `unless on(...)`: the series is not judged while the window holds a figure
    of `metric` > 0 whose labels agree with the series' on `equal` (absent reads "")."""

    metric: str  # e.g. deployment_rollout_active
    equal: tuple[str, ...] = ()  # e.g. [model]; empty: any such figure > 0
    # Only for the rule's series these label matchers select (e.g. {feature: model}: the
    # model-mix drift is held off during a rollout, the other features are not); empty: all.
    series: dict[str, str] = Field(default_factory=dict)

    @field_validator("series")
    @classmethod
    def _matchers(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            Matcher.from_config(key, str(value))  # raises on a bad regex
        return v


@dataclass(frozen=True)
class BaselineBound:
    """What a baseline rule compares a window's value with."""

    centre: float  # the median (ratio), or the learned centre
    bound: float
    spread: float | None = None  # learned: the robust sigma
    seasonal: bool = False  # learned: centred on same-weekday (same-hour) windows
    se: float | None = None  # binomial: the standard error of the difference
