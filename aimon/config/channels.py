"""The channels of the `alerts:` section (`alerts.channels`): Slack, e-mail, PagerDuty
and webhooks. Secrets are never values here: a channel names the environment variable
(or Prefect Secret block) that holds its webhook URL, token or password, so the YAML
can be committed.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from aimon.config.base import Strict

SEVERITIES = ("critical", "warning", "info")  # most severe first: the order of a grouped message


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


PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")  # what Events API v2 accepts


def _http_url(v: str, what: str) -> str:
    if not re.match(r"^https?://[^\s/]+", v):
        raise ValueError(f"{what} {v!r} is not an http(s) URL")
    return v


class PagerDutyChannelConfig(Strict):
    """PagerDuty Events API v2: one event per alert of a notification, the alert's id as
    `dedup_key`: `trigger` when it fires (a repeat triggers the same open alert again,
    which PagerDuty de-duplicates), `resolve` when it resolves."""

    type: Literal["pagerduty"]
    routing_key_env: str | None = None  # env var holding the integration's routing key (32 characters)
    routing_key_secret: str | None = None  # or a Prefect Secret block holding it
    url: str = "https://events.pagerduty.com/v2/enqueue"  # the Events API v2 endpoint (EU: events.eu.pagerduty.com)
    source: str = "aimon"  # payload.source: the monitored system as PagerDuty shows it
    # aimon severity -> PagerDuty severity (critical, error, warning or info); keys left
    # out keep the same name.
    severity_map: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=10.0, gt=0)
    # Retries within one send on a 429 that says when (Retry-After), waiting that long;
    # other 429s, 5xx and connection errors go back to the outbox's send_attempts.
    max_retries: int = Field(default=2, ge=0, le=10)
    max_retry_after_seconds: float = Field(default=30.0, ge=0)  # a longer Retry-After is left to the outbox

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _http_url(v, "url")

    @field_validator("severity_map")
    @classmethod
    def _severities(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if key not in SEVERITIES:
                raise ValueError(f"severity_map: {key!r} is not an aimon severity; valid: {', '.join(SEVERITIES)}")
            if value not in PAGERDUTY_SEVERITIES:
                raise ValueError(
                    f"severity_map.{key}: {value!r} is not a PagerDuty severity; "
                    f"valid: {', '.join(PAGERDUTY_SEVERITIES)}"
                )
        return v

    @model_validator(mode="after")
    def _key(self) -> PagerDutyChannelConfig:
        _one_secret(self.routing_key_env, self.routing_key_secret, "routing_key")
        if not (self.routing_key_env or self.routing_key_secret):
            raise ValueError("a pagerduty channel needs routing_key_env (or routing_key_secret)")
        return self

    def severity(self, aimon_severity: str) -> str:
        return self.severity_map.get(aimon_severity, aimon_severity)


class WebhookChannelConfig(Strict):
    """A generic webhook: POSTs Alertmanager's webhook JSON (version 4), one request
    per notification, so a receiver written for Alertmanager takes aimon's alerts."""

    type: Literal["webhook"]
    url_env: str | None = None  # env var holding the URL (when the URL itself is a secret)
    url_secret: str | None = None  # or a Prefect Secret block holding it
    url: str | None = None  # or the URL itself, when it holds no secret
    # env var (or Prefect Secret block) holding extra headers, one 'Name: value' a line,
    # e.g. 'Authorization: Bearer ...'.
    headers_env: str | None = None
    headers_secret: str | None = None
    receiver: str | None = None  # the payload's "receiver"; default: the channel's name
    external_url: str | None = None  # the payload's "externalURL"; default: alerts.link
    max_alerts: int = Field(default=0, ge=0)  # 0: all; beyond it, counted in truncatedAlerts
    timeout_seconds: float = Field(default=10.0, gt=0)
    # Retries within one send on a 429 with Retry-After (waiting that long), as pagerduty's.
    max_retries: int = Field(default=2, ge=0, le=10)
    max_retry_after_seconds: float = Field(default=30.0, ge=0)

    @field_validator("url", "external_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return v if v is None else _http_url(v, "url")

    @model_validator(mode="after")
    def _where(self) -> WebhookChannelConfig:
        given = [k for k in ("url_env", "url_secret", "url") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "a webhook channel needs exactly one of url_env, url_secret or url"
                + (f" (got {', '.join(given)})" if given else "")
            )
        _one_secret(self.headers_env, self.headers_secret, "headers")
        return self


ChannelConfig = Annotated[
    SlackChannelConfig | EmailChannelConfig | PagerDutyChannelConfig | WebhookChannelConfig,
    Field(discriminator="type"),
]
