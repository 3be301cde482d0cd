"""The `alerts:` section of the config: rules, routes, channels, timing.

Kept in one module so the alerting schema reads in one place; `Config.alerts`
(aimon.config.root) is the one field that ties it in. Secrets are never values here: a channel names the
environment variable (or Prefect Secret block) that holds its webhook URL, token or
password, so the YAML can be committed.
"""

from __future__ import annotations

import datetime as dt
import re
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
from aimon.matchers import Matcher

OPS = (">", ">=", "<", "<=")
SEVERITIES = ("critical", "warning", "info")  # most severe first: the order of a grouped message
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


def _one_secret(env: str | None, block: str | None, what: str) -> None:
    if env and block:
        raise ValueError(f"give {what}_env or {what}_secret, not both")


class SlackChannelConfig(Strict):
    """Slack through slack-sdk: an incoming webhook, or a bot token and a channel."""

    type: Literal["slack"]
    webhook_url_env: str | None = None  # env var holding the incoming-webhook URL
    webhook_url_secret: str | None = None  # or a Prefect Secret block holding it
    token_env: str | None = None  # env var holding a bot token (xoxb-...)
    token_secret: str | None = None
    channel: str | None = None  # with a token: where chat.postMessage posts
    base_url: str | None = None  # Web API base, e.g. a proxy; default https://slack.com/api/
    timeout_seconds: float = Field(default=10.0, gt=0)
    # Retries slack-sdk makes itself on 429 (after Retry-After), 5xx and connection errors.
    max_retries: int = Field(default=2, ge=0, le=10)

    @model_validator(mode="after")
    def _mode(self) -> SlackChannelConfig:
        _one_secret(self.webhook_url_env, self.webhook_url_secret, "webhook_url")
        _one_secret(self.token_env, self.token_secret, "token")
        webhook = bool(self.webhook_url_env or self.webhook_url_secret)
        token = bool(self.token_env or self.token_secret)
        if webhook == token:
            raise ValueError(
                "a slack channel needs either webhook_url_env (or webhook_url_secret), "
                "or token_env (or token_secret) with channel"
            )
        if token and not self.channel:
            raise ValueError("a slack channel with a bot token needs 'channel' (e.g. '#ml-alerts')")
        return self


class EmailChannelConfig(Strict):
    """Email over SMTP: STARTTLS (or implicit TLS) and login, plain-text and HTML parts."""

    type: Literal["email"]
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    ssl: bool = False  # implicit TLS (SMTPS, usually port 465) instead of STARTTLS
    ca_file: str | None = None  # a private CA to trust for TLS; default: the system's
    username: str | None = None
    password_env: str | None = None
    password_secret: str | None = None
    sender: str
    recipients: tuple[str, ...] = Field(min_length=1)
    timeout_seconds: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _auth(self) -> EmailChannelConfig:
        _one_secret(self.password_env, self.password_secret, "password")
        if self.ssl and self.starttls:
            raise ValueError("ssl (implicit TLS) and starttls exclude each other: set starttls: false with ssl: true")
        if (self.password_env or self.password_secret) and not self.username:
            raise ValueError("a password needs a username")
        return self


ChannelConfig = Annotated[SlackChannelConfig | EmailChannelConfig, Field(discriminator="type")]


class RouteConfig(Strict):
    """One route is one grouped message per run, sent to each of its channels."""

    name: str
    channels: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _n(cls, v: str) -> str:
        return _name(v, "route name")


class BaselineCondition(Strict):
    """Compare with the median of the same figure over the previous N windows."""

    windows: int = Field(default=7, ge=1, le=1000)
    min_windows: int = Field(default=3, ge=1)  # fewer stored windows: the rule cannot judge, does not fire
    factor: float | None = Field(default=None, gt=0)  # '>' with factor 1.5: above 1.5x the median
    percent: float | None = Field(default=None, ge=0)  # '>' with 20: 20% above; '<' with 20: 20% below

    @model_validator(mode="after")
    def _one(self) -> BaselineCondition:
        if (self.factor is None) == (self.percent is None):
            raise ValueError("a baseline needs exactly one of factor or percent")
        if self.min_windows > self.windows:
            raise ValueError(f"min_windows ({self.min_windows}) is more than windows ({self.windows})")
        return self


# Names a summary template may use besides the figure's own labels.
TEMPLATE_FIELDS = ("rule", "metric", "severity", "value", "threshold", "bound", "baseline", "labels", "window")


class AlertRule(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    metric: str
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
    # Windows back within bounds before a firing alert resolves; None: alerts.resolve_after.
    resolve_after: int | None = Field(default=None, ge=1, le=100)
    # Windows between re-sends of a still-firing alert; None: alerts.repeat_windows (or repeat_interval).
    repeat_windows: int | None = Field(default=None, ge=1, le=1000)

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
        return self

    def baseline_bound(self, median: float) -> float:
        """The bound a baseline rule compares the window's value with, given the median of
        the series' previous windows (the alert rules judge with it; the report draws it)."""
        b = self.baseline
        assert b is not None
        if b.factor is not None:
            return median * b.factor
        pct = (b.percent or 0.0) / 100.0
        return median * (1 + pct) if self.op in (">", ">=") else median * (1 - pct)


class InhibitRule(Strict):
    """Alertmanager-style inhibition: while an alert matching `source` fires, a firing
    alert matching `target` whose `equal` labels have the same values (a label neither
    carries counts as equal) is folded into it: recorded as "folded", not sent on its
    own, listed in the source's notification. Matchers as in a rule's `labels:` ('v',
    '!=v', '=~re', '!~re') on the series' labels plus alertname, severity, metric,
    route and granularity."""

    source: dict[str, str] = Field(min_length=1)  # e.g. {alertname: ErrorRateHigh}
    target: dict[str, str] = Field(min_length=1)  # e.g. {alertname: DataDriftDetected, feature: error_type}
    equal: tuple[str, ...] = ()  # labels that must agree between source and target

    @field_validator("source", "target")
    @classmethod
    def _matchers(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            Matcher.from_config(key, str(value))  # raises on a bad regex
        return v


class AlertsConfig(Strict):
    enabled: bool = True
    rules: tuple[AlertRule, ...] = ()
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
