"""Notification channels, registered by name: `slack` (slack-sdk), `email` (smtplib),
`pagerduty` (Events API v2) and `webhook` (Alertmanager's webhook JSON), the last two
over the standard library's urllib (channel_pagerduty.py, channel_webhook.py, with
channel_http.py; what all share: channel_base.py).

A channel takes an outbox payload and either delivers it or raises `SendError`,
marked transient (connection refused, timeout, 429, 5xx, SMTP 4xx: worth retrying)
or not (bad credentials, unknown channel: fix the config). Secrets are read when the
channel is built, from the environment variable or Prefect Secret block the config
names, and are masked in every error message and log line.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from aimon.config.channels import (
    ChannelConfig,
    EmailChannelConfig,
    SlackChannelConfig,
)
from aimon.errors import SendError
from aimon.tasks.alerts import render
from aimon.tasks.alerts.channel_base import Channel, mask, masked_logger, resolve_secret
from aimon.tasks.alerts.channel_pagerduty import PagerDutyChannel
from aimon.tasks.alerts.channel_webhook import WebhookChannel

# -- Slack -------------------------------------------------------------------------------


class SlackChannel:
    """An incoming webhook (`WebhookClient.send`) or a bot token (`chat.postMessage`).

    slack-sdk's retry handlers wait out a 429's Retry-After and retry 5xx and
    connection errors (`max_retries` times) before this channel reports a failure."""

    def __init__(self, name: str, cfg: SlackChannelConfig):
        from slack_sdk.http_retry.builtin_handlers import (  # noqa: PLC0415  lazy: slack_sdk, Slack channels only
            ConnectionErrorRetryHandler,
            RateLimitErrorRetryHandler,
            ServerErrorRetryHandler,
        )

        self.name = name
        self.cfg = cfg
        n = cfg.max_retries
        handlers = [
            ConnectionErrorRetryHandler(max_retry_count=n),
            RateLimitErrorRetryHandler(max_retry_count=n),
            ServerErrorRetryHandler(max_retry_count=n),
        ]
        if cfg.webhook_url_env or cfg.webhook_url_secret:
            from slack_sdk.webhook import WebhookClient  # noqa: PLC0415  lazy: slack_sdk, Slack channels only

            url = resolve_secret(cfg.webhook_url_env, cfg.webhook_url_secret, f"slack channel {name} webhook URL")
            self.secrets: tuple[str, ...] = (url,)
            self._webhook: Any = WebhookClient(
                url,
                timeout=int(max(1, cfg.timeout_seconds)),
                retry_handlers=handlers,
                logger=masked_logger(name, self.secrets),
            )
            self._client: Any = None
        else:
            from slack_sdk import WebClient  # noqa: PLC0415  lazy: slack_sdk, Slack channels only

            token = resolve_secret(cfg.token_env, cfg.token_secret, f"slack channel {name} token")
            self.secrets = (token,)
            kwargs: dict[str, Any] = {"base_url": cfg.base_url} if cfg.base_url else {}
            self._client = WebClient(
                token=token,
                timeout=int(max(1, cfg.timeout_seconds)),
                retry_handlers=handlers,
                logger=masked_logger(name, self.secrets),
                **kwargs,
            )
            self._webhook = None

    def send(self, payload: dict[str, Any]) -> None:
        text = render.subject(payload)  # the fallback for notifications and old clients
        blocks = render.slack_blocks(payload)
        try:
            if self._webhook is not None:
                resp = self._webhook.send(text=text, blocks=blocks)
                if resp.status_code != 200:
                    raise SendError(
                        f"slack webhook answered HTTP {resp.status_code}: {str(resp.body)[:200]}",
                        transient=resp.status_code == 429 or resp.status_code >= 500,
                    )
            else:
                from slack_sdk.errors import SlackApiError  # noqa: PLC0415  lazy: slack_sdk, Slack channels only

                try:
                    self._client.chat_postMessage(channel=self.cfg.channel, text=text, blocks=blocks)
                except SlackApiError as err:
                    status = err.response.status_code
                    error = err.response.get("error") if hasattr(err.response, "get") else None
                    raise SendError(
                        f"slack chat.postMessage to {self.cfg.channel} failed: HTTP {status} {error or ''}".strip(),
                        transient=status == 429 or status >= 500 or error in ("ratelimited", "fatal_error"),
                    ) from None
        except SendError as err:
            raise SendError(mask(str(err), self), transient=err.transient) from None
        except (OSError, TimeoutError) as err:  # refused, reset, DNS, timeout (urllib wraps them in URLError)
            raise SendError(f"slack unreachable: {mask(str(err), self)}", transient=True) from None


# -- email ---------------------------------------------------------------------------------


class EmailChannel:
    """SMTP with STARTTLS (or implicit TLS) and login; a plain-text and an HTML part."""

    def __init__(self, name: str, cfg: EmailChannelConfig):
        self.name = name
        self.cfg = cfg
        self.password = (
            resolve_secret(cfg.password_env, cfg.password_secret, f"email channel {name} password")
            if (cfg.password_env or cfg.password_secret)
            else None
        )
        self.secrets: tuple[str, ...] = (self.password,) if self.password else ()

    def message(self, payload: dict[str, Any]) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = render.subject(payload)
        msg["From"] = self.cfg.sender
        msg["To"] = ", ".join(self.cfg.recipients)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="aimon")
        msg.set_content(render.text(payload))
        msg.add_alternative(render.html_body(payload), subtype="html")
        return msg

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cfg.ca_file)

    def send(self, payload: dict[str, Any]) -> None:
        cfg = self.cfg
        msg = self.message(payload)
        where = f"SMTP {cfg.host}:{cfg.port}"
        try:
            smtp: smtplib.SMTP
            if cfg.ssl:
                smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_seconds, context=self._tls())
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_seconds)
            with smtp:
                smtp.ehlo()
                if cfg.starttls:
                    smtp.starttls(context=self._tls())
                    smtp.ehlo()
                if cfg.username:
                    smtp.login(cfg.username, self.password or "")
                refused = smtp.send_message(msg)
            if refused:
                raise SendError(f"{where} refused recipients: {', '.join(sorted(refused))}", transient=False)
        except smtplib.SMTPAuthenticationError as err:
            raise SendError(
                f"{where} rejected the login for {cfg.username} ({err.smtp_code})", transient=False
            ) from None
        except smtplib.SMTPNotSupportedError as err:
            raise SendError(
                f"{where}: {err} (set starttls: false, or use a server that offers it)", transient=False
            ) from None
        except smtplib.SMTPResponseException as err:
            raise SendError(
                f"{where} answered {err.smtp_code} {mask(_text(err.smtp_error), self)}",
                transient=400 <= err.smtp_code < 500,
            ) from None
        except smtplib.SMTPRecipientsRefused as err:
            raise SendError(f"{where} refused every recipient: {', '.join(err.recipients)}", transient=False) from None
        except ssl.SSLError as err:
            raise SendError(f"{where}: TLS failed: {err} (check ca_file)", transient=False) from None
        except (TimeoutError, OSError) as err:  # refused, reset, timeout, disconnected
            raise SendError(f"{where} unreachable: {mask(str(err), self)}", transient=True) from None


def _text(v: bytes | str) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else v


# -- registry ------------------------------------------------------------------------------

CHANNEL_TYPES: dict[str, Callable[[str, Any], Channel]] = {
    "slack": SlackChannel,
    "email": EmailChannel,
    "pagerduty": PagerDutyChannel,
    "webhook": WebhookChannel,
}


def build_channel(name: str, cfg: ChannelConfig) -> Channel:
    try:
        factory = CHANNEL_TYPES[cfg.type]
    except KeyError:
        raise SendError(
            f"channel {name}: unknown type {cfg.type!r}; valid: {', '.join(CHANNEL_TYPES)}", transient=False
        ) from None
    return factory(name, cfg)
