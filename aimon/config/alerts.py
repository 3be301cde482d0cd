"""The `alerts:` section of the config: rules, routes, inhibition, timing; the
channels' own settings are in aimon.config.channels, a rule's baseline, minimum
sample and `unless` in aimon.config.baselines.

`Config.alerts` (aimon.config.root) is the one field that ties it in.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import statistics
import string
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from aimon.config.base import Strict, check_identifier
from aimon.config.baselines import BaselineBound, BaselineCondition, MinSample, Unless
from aimon.config.channels import ChannelConfig
from aimon.matchers import Matcher
from aimon.stats.bounds import learn, proportion_se

OPS = (">", ">=", "<", "<=")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,99}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(v: Any) -> Any:
    """'90s', '30m', '4h', '2d', '1w' (or a number of seconds) -> timedelta."""
    if isinstance(v, dt.timedelta):
        return v
    if isinstance(v, int | float) and not isinstance(v, bool):
        return dt.timedelta(seconds=v)
    if isinstance(v, str):
        m = _DURATION.match(v)
        if m:
            return dt.timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
        try:  # ISO 8601 (P2D, PT4H), which is also how a dumped config writes it
            return TypeAdapter(dt.timedelta).validate_python(v)
        except ValidationError:
            pass
    raise ValueError(f"{v!r} is not a duration: use e.g. 90s, 30m, 4h, 2d or 1w")


Duration = Annotated[dt.timedelta, BeforeValidator(parse_duration)]


def _name(v: str, what: str) -> str:
    if not _NAME.match(v):
        raise ValueError(f"{what} {v!r}: use letters, digits, _, . and - (starting with a letter or _)")
    return v


class RouteConfig(Strict):
    """One route is one grouped message per run, sent to each of its channels."""

    name: str
    channels: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _n(cls, v: str) -> str:
        return _name(v, "route name")


# Names a summary template may use besides the figure's own labels.
TEMPLATE_FIELDS = ("rule", "metric", "severity", "value", "threshold", "bound", "baseline", "labels", "window")


class AlertRule(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    metric: str
    # False: kept in the file (e.g. the shipped cost-saving rules) but never judged.
    enabled: bool = True
    # Label matchers: 'v' equals, '!=v' differs, '=~re' matches, '!~re' does not match.
    labels: dict[str, str] = Field(default_factory=dict)
    op: Literal[">", ">=", "<", "<="]
    threshold: float | None = None
    baseline: BaselineCondition | None = None  # with threshold too, both must hold
    for_windows: int = Field(default=1, ge=1, le=100, alias="for")  # consecutive breaching windows
    severity: Literal["critical", "warning", "info"] = "warning"
    route: str = "default"
    granularity: Literal["daily", "hourly"] | None = None  # None: windows of any granularity
    summary: str | None = None  # str.format template; default: metric, labels, value and condition
    runbook: str | None = None  # where to look next (a URL or a command), shown in the notification
    hints: tuple[str, ...] = ()  # next steps for this kind of alert, listed under "Next steps" in the notification
    # Windows back within bounds before a firing alert resolves; None: alerts.resolve_after.
    resolve_after: int | None = Field(default=None, ge=1, le=100)
    # Windows between re-sends of a still-firing alert; None: alerts.repeat_windows (or repeat_interval).
    repeat_windows: int | None = Field(default=None, ge=1, le=1000)
    # Minimum evidence: below `value` of the n behind the series (e.g. llm_requests), not judged.
    min_sample: MinSample | None = None
    # Not judged while the window holds one of these figures > 0 for the series (e.g. a rollout).
    unless: tuple[Unless, ...] = ()

    @field_validator("name")
    @classmethod
    def _n(cls, v: str) -> str:
        return _name(v, "rule name")

    @field_validator("labels")
    @classmethod
    def _matchers(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            Matcher.from_config(key, str(value))  # raises on a bad regex
        return v

    @field_validator("summary")
    @classmethod
    def _template(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(v) if f]
        except ValueError as err:
            raise ValueError(f"summary template {v!r}: {err}") from None
        for f in fields:
            root = re.split(r"[.\[]", f, maxsplit=1)[0]
            if not root or root.isdigit():
                raise ValueError(f"summary template {v!r}: use named fields like {{value}} or {{model}}")
        return v

    @model_validator(mode="after")
    def _condition(self) -> AlertRule:
        if self.threshold is None and self.baseline is None:
            raise ValueError(f"rule {self.name!r} needs a threshold, a baseline, or both")
        if self.baseline is not None and self.baseline.short_history == "threshold" and self.threshold is None:
            raise ValueError(f"rule {self.name!r}: baseline.short_history: threshold needs a threshold")
        if self.baseline is not None and self.baseline.uncertainty and self.min_sample is None:
            raise ValueError(
                f"rule {self.name!r}: baseline.uncertainty needs min_sample (its metric gives the n behind the figure)"
            )
        return self

    @property
    def upward(self) -> bool:
        return self.op in (">", ">=")

    def baseline_bound(self, median: float) -> float:
        """The ratio bound (method ratio; a learned rule's floor) given the median of the
        series' previous windows. A learned rule without factor/percent: the median."""
        b = self.baseline
        assert b is not None
        if b.factor is not None:
            return median * b.factor
        pct = (b.percent or 0.0) / 100.0
        return median * (1 + pct) if self.upward else median * (1 - pct)

    def bound_of(
        self,
        history: list[float],
        *,
        phases: list[int] | None = None,
        phase: int | None = None,
        n: float | None = None,
        n_baseline: float | None = None,
        n_history: list[float] | None = None,
    ) -> BaselineBound:
        """The bound a baseline rule compares a window's value with, from the series'
        previous windows (`history`, at least one value; `phases`: each one's weekday or
        hour, `phase` the judged window's) and, for `uncertainty: binomial`, the window's
        n and the baseline windows' total n (`n_history`: each history value's n). The
        farthest from the centre, in the op's
        direction, of: the ratio bound (when factor/percent), centre -/+ k x spread
        (learned), centre -/+ z x SE (binomial); learned and binomial together: centre
        -/+ sqrt((k x excess)^2 + (z x SE)^2), the excess being the learned spread beyond
        the baseline windows' own sampling noise. The alert rules judge with it."""
        b = self.baseline
        assert b is not None and history
        pick = max if self.upward else min
        sign = 1.0 if self.upward else -1.0
        spread, seasonal, se = None, False, None
        if b.method == "learned" and len(history) < b.learn_windows:
            # Too few windows to learn a spread from (a new series): the floor over its
            # highest window (lowest, for a drop), its margin widened by cold_start_factor:
            # neither the week's cycle nor the day-to-day noise is known yet (seen: a
            # consumer app's first Saturday at 1.8x its busiest weekday, a normal day).
            centre = float(statistics.median(history))
            edge = max(history) if self.upward else min(history)
            candidates = [edge + b.cold_start_factor * (self.baseline_bound(edge) - edge)]
        elif b.method == "learned":
            log = all(v > 0 for v in history) and (b.scale == "log" or (b.scale == "auto" and b.uncertainty is None))
            got = learn(
                history,
                phases=phases if b.seasonal else None,
                phase=phase if b.seasonal else None,
                min_relative_spread=b.min_spread_percent / 100.0,
                min_spread=b.min_spread,
                log=log,
            )
            centre, spread, seasonal = got.centre, got.spread, got.seasonal
            if log:  # the bound in the original units; the spread reported as its share of the centre
                candidates = [centre * math.exp(sign * b.k * spread)]
                spread *= centre
            else:
                candidates = [centre + sign * b.k * spread]
            if b.factor is not None or b.percent is not None:
                candidates.append(self.baseline_bound(centre))
        else:
            centre = float(statistics.median(history))
            candidates = [self.baseline_bound(centre)]
        if b.uncertainty == "binomial" and n is not None and n > 0:
            ratio = b.factor is not None or b.percent is not None
            if n_history is not None and len(n_history) == len(history) and sum(n_history) > 0:
                # A proportion's baseline is the pooled share of the baseline windows' rows,
                # not the median of a few windows' shares: with 11 windows of ~40 rows the
                # median wanders 2-3 points, and the bound with it (seen: a centre of 0.87
                # for a true 0.80 put the bound at 2.8 sampling SE).
                centre = math.fsum(v * w for v, w in zip(history, n_history, strict=True)) / math.fsum(n_history)
            se = proportion_se(centre, n, n_baseline)
            candidates = [self.baseline_bound(centre)] if ratio or spread is None else []
            if spread is not None and n_baseline:
                # The learned spread of a proportion holds its windows' own sampling noise,
                # which z x SE already covers: what remains is the real day-to-day change
                # (over-dispersion). Both add up: centre -/+ sqrt((k x excess)^2 + (z x SE)^2).
                # (k x the whole spread would count the sampling noise twice, at k.)
                q = min(max(centre, 0.0), 1.0)
                sampling = q * (1 - q) / (n_baseline / len(history))
                excess = math.sqrt(max(spread * spread - sampling, 0.0))
                candidates.append(centre + sign * math.hypot(b.k * excess, b.z * se))
            else:
                if spread is not None:
                    candidates.append(centre + sign * b.k * spread)
                candidates.append(centre + sign * b.z * se)
        return BaselineBound(centre, pick(candidates), spread, seasonal, se)

    def baseline_how(self) -> str:
        """How the bound is made, for a notification: '1.5x', '10% below',
        'learned (median + 5 sigma, at least 1.5x)'."""
        b = self.baseline
        assert b is not None
        ratio = None
        if b.factor is not None:
            ratio = f"{b.factor:g}x"
        elif b.percent is not None:
            ratio = f"{b.percent:g}% {'above' if self.upward else 'below'}"
        if b.method == "ratio":
            return ratio or ""
        how = f"learned (median {'+' if self.upward else '-'} {b.k:g} sigma"
        if b.uncertainty:
            how += f", beyond {b.z:g} SE of sampling"
        return how + (f", at least {ratio})" if ratio else ")")


class InhibitRule(Strict):
    """Alertmanager-style inhibition: while an alert matching `source` fires, a firing
    alert matching `target` whose `equal` labels have the same values (a label neither
    carries counts as equal) is folded into it: recorded as "folded", not sent on its
    own, listed in the source's notification. Matchers as in a rule's `labels:` ('v',
    '!=v', '=~re', '!~re') on the series' labels plus alertname, severity, metric,
    route and granularity."""

    source: dict[str, str]  # e.g. {alertname: ErrorRateHigh}
    target: dict[str, str]  # e.g. {alertname: DataDriftDetected, feature: error_type}
    equal: tuple[str, ...] = ()  # labels that must agree between source and target

    @model_validator(mode="after")
    def _matchers(self) -> InhibitRule:
        # Checked here, naming the side: an error's location leaves out a key called "source".
        for side in ("source", "target"):
            matchers = getattr(self, side)
            if not matchers:
                raise ValueError(f"{side}: give at least one matcher, e.g. {{alertname: ErrorRateHigh}}")
            for key, value in matchers.items():
                try:
                    Matcher.from_config(key, str(value))
                except ValueError as err:
                    raise ValueError(f"{side}.{key}: {err}") from None
        return self


class AlertsConfig(Strict):
    enabled: bool = True
    rules: tuple[AlertRule, ...] = ()

    @field_validator("rules")
    @classmethod
    def _enabled_rules(cls, v: tuple[AlertRule, ...]) -> tuple[AlertRule, ...]:
        return tuple(r for r in v if r.enabled)

    routes: tuple[RouteConfig, ...] = (RouteConfig(name="default"),)
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    # A firing alert resolves once its series has been back within bounds for this many
    # consecutive judged windows (until then it stays firing, "recovering"); a rule's
    # own resolve_after wins.
    resolve_after: int = Field(default=2, ge=1, le=100)
    # A still-firing alert is sent again after this many windows of its granularity
    # since it was last sent ("still firing, day 4"); a rule's own repeat_windows wins.
    repeat_windows: int = Field(default=3, ge=1, le=1000)
    # Instead of repeat_windows: re-send after this much window time (e.g. 12h); null:
    # count windows. Window time, so a rerun of a window never re-sends.
    repeat_interval: Duration | None = None
    # Fold one alert into another that fires in the same window (InhibitRule). Within a
    # rule, a series always folds into a firing roll-up of itself (__all__ or a label fewer).
    inhibit_rules: tuple[InhibitRule, ...] = ()
    # An unsent notification is retried on each later run until it goes or is this old.
    outbox_expiry: Duration = dt.timedelta(days=2)
    send_attempts: int = Field(default=3, ge=1, le=20)  # per notification within one run
    retry_backoff_seconds: float = Field(default=2.0, ge=0)  # doubled after each failed attempt
    link: str | None = None  # e.g. your Grafana dashboard, shown as "where to look next"
    state_table: str = "monitoring_alerts"
    events_table: str = "monitoring_alert_events"
    silences_table: str = "monitoring_silences"
    outbox_table: str = "monitoring_outbox"

    @field_validator("channels")
    @classmethod
    def _channel_names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name in v:
            _name(name, "channel name")
        return v

    @field_validator("state_table", "events_table", "silences_table", "outbox_table")
    @classmethod
    def _table(cls, v: str) -> str:
        return check_identifier(v, "table name")

    @model_validator(mode="after")
    def _references(self) -> AlertsConfig:
        routes = [r.name for r in self.routes]
        if len(set(routes)) != len(routes):
            raise ValueError(f"route names must be unique, got {routes}")
        for r in self.routes:
            for c in r.channels:
                if c not in self.channels:
                    valid = ", ".join(self.channels) or "none configured"
                    raise ValueError(f"route {r.name!r} names channel {c!r}; channels: {valid}")
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique: {', '.join(dupes)}")
        for rule in self.rules:
            if rule.route not in routes:
                raise ValueError(f"rule {rule.name!r} names route {rule.route!r}; routes: {', '.join(routes)}")
        for i, ir in enumerate(self.inhibit_rules):
            for side in ("source", "target"):
                name = getattr(ir, side).get("alertname")
                if name is not None and Matcher.from_config("alertname", name).op == "=" and name not in names:
                    raise ValueError(
                        f"inhibit_rules.{i}.{side}.alertname: no rule named {name!r}; "
                        f"rules: {', '.join(names) or 'none'}"
                    )
        return self

    def route(self, name: str) -> RouteConfig:
        for r in self.routes:
            if r.name == name:
                return r
        raise KeyError(name)
