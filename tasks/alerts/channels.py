"""Notification channels, registered by name: `slack` (slack-sdk), `email` (smtplib),
`pagerduty` (Events API v2) and `webhook` (Alertmanager's webhook JSON), the last two
over the standard library's urllib.

A channel takes an outbox payload and either delivers it or raises `SendError`,
marked transient (connection refused, timeout, 429, 5xx, SMTP 4xx: worth retrying)
or not (bad credentials, unknown channel: fix the config). Secrets are read when the
channel is built, from the environment variable or Prefect Secret block the config
names, and are masked in every error message and log line.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import os
import re
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from aimon.config.alerts import (
    ChannelConfig,
    EmailChannelConfig,
    PagerDutyChannelConfig,
    SlackChannelConfig,
    WebhookChannelConfig,
)
from aimon.errors import SendError
from aimon.tasks.alerts import render

# Webhook URLs and tokens that may show up in a library's message: masked even when
# the secret was not read through this module.
_SECRET_PATTERNS = (
    re.compile(r"https://hooks\.slack\.com/\S+"),
    re.compile(r"xox[abposre]-[A-Za-z0-9-]+"),
)


class Channel(Protocol):
    name: str
    secrets: tuple[str, ...]

    def send(self, payload: dict[str, Any]) -> None: ...


def mask(text: str, channel: Channel | None = None) -> str:
    for secret in getattr(channel, "secrets", ()) or ():
        if secret:
            text = text.replace(secret, "***")
    for pat in _SECRET_PATTERNS:
        text = pat.sub("***", text)
    return text


class _MaskSecrets(logging.Filter):
    """Rewrites a record with its secrets masked: slack-sdk's debug log prints the
    webhook URL and request headers."""

    def __init__(self, secrets: tuple[str, ...]):
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        for secret in self.secrets:
            text = text.replace(secret, "***")
        for pat in _SECRET_PATTERNS:
            text = pat.sub("***", text)
        record.msg, record.args = text, ()
        return True


def masked_logger(name: str, secrets: tuple[str, ...]) -> logging.Logger:
    logger = logging.getLogger(f"aimon.tasks.alerts.channels.{name}")
    for f in list(logger.filters):
        logger.removeFilter(f)
    logger.addFilter(_MaskSecrets(secrets))
    return logger


def resolve_secret(env: str | None, block: str | None, what: str) -> str:
    """The value of the environment variable `env`, or of the Prefect Secret block `block`."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise SendError(f"{what}: environment variable {env} is not set: export it", transient=False)
        return value
    if block:
        try:
            from prefect.blocks.system import Secret  # noqa: PLC0415  lazy: Prefect costs ~1 s to import

            return str(Secret.load(block).get())  # type: ignore[union-attr]
        except Exception as err:
            raise SendError(
                f"{what}: cannot load Prefect Secret block {block!r} ({type(err).__name__}): create it "
                f"with `prefect block register` or Secret(value=...).save({block!r})",
                transient=True,
            ) from None
    raise SendError(f"{what}: no secret configured", transient=False)


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


# -- HTTP JSON: PagerDuty and webhooks --------------------------------------------------------

# Alertmanager's "no end yet" for a firing alert (Go's zero time).
ZERO_TIME = "0001-01-01T00:00:00Z"


class _Answer:
    def __init__(self, status: int, headers: Any, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def text(self, limit: int = 300) -> str:
        return self.body.decode(errors="replace").strip()[:limit]

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


def _post_json(url: str, body: Any, headers: dict[str, str], timeout: float) -> _Answer:
    """One POST; any HTTP status comes back as an answer, a network failure raises OSError
    (refused, reset, DNS, timeout) or http.client.HTTPException (a garbled answer)."""
    data = json.dumps(body, allow_nan=False).encode()
    req = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "aimon", **headers},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return _Answer(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return _Answer(err.code, err.headers, err.read())


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """A Retry-After header in seconds: '120', or an HTTP date; None if absent or garbled."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def _transient_status(status: int) -> bool:
    return status in (408, 429) or status >= 500


def _display_url(url: str) -> str:
    """What an error may say about a URL that may itself be the secret: scheme, host, port."""
    u = urlsplit(url)
    host = u.hostname or "?"
    port = f":{u.port}" if u.port else ""
    return f"{u.scheme}://{host}{port}" + ("/..." if u.path not in ("", "/") or u.query else "")


class _HttpJsonChannel:
    """What the PagerDuty and webhook channels share: a POST with a timeout, a 429's
    Retry-After waited out up to `max_retries` times (when it is at most
    `max_retry_after_seconds`), and every failure as a SendError with secrets masked."""

    name: str
    secrets: tuple[str, ...]
    sleep: Callable[[float], None]

    def _post(self, url: str, body: Any, headers: dict[str, str], cfg: Any) -> _Answer:
        for attempt in range(cfg.max_retries + 1):
            answer = _post_json(url, body, headers, cfg.timeout_seconds)
            if answer.status != 429 or attempt == cfg.max_retries:
                return answer
            wait = retry_after_seconds(answer.headers.get("Retry-After") if answer.headers else None)
            if wait is None or wait > cfg.max_retry_after_seconds:
                return answer  # the outbox retries it, with its own backoff or on a later run
            self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


def rfc3339(ts: str | dt.datetime | None) -> str | None:
    """'2026-11-05T00:00:00' (naive: UTC, as every window in aimon) -> '2026-11-05T00:00:00Z'."""
    if ts is None:
        return None
    t = dt.datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    t = t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)
    return t.isoformat().replace("+00:00", "Z")


def _finite(v: Any) -> Any:
    return None if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))) else v


def _is_url(v: str | None) -> bool:
    return bool(v) and re.match(r"^https?://\S+$", v or "") is not None


def _still(item: dict[str, Any]) -> str:
    if not item.get("repeat"):
        return ""
    return f" (still firing, {item['firing_for']})" if item.get("firing_for") else " (still firing)"


# Item fields later helpers may add (numbers behind the condition, likely causes, runbook
# hints): passed on to PagerDuty's custom_details whenever the payload carries them.
_EXTRA_DETAILS = ("bound", "threshold", "baseline", "causes", "hints")


def pagerduty_event(
    item: dict[str, Any], payload: dict[str, Any], cfg: PagerDutyChannelConfig, routing_key: str
) -> dict[str, Any]:
    """The Events API v2 event for one alert of a notification: `trigger` (a first firing
    or a repeat: PagerDuty adds a repeat to the alert still open under the same
    dedup_key) or `resolve`. dedup_key is the alert's id, the same for every event of
    one alert (rule, series, granularity)."""
    base = {"routing_key": routing_key, "dedup_key": item["alert_id"]}
    if item["status"] == "resolved":
        return {**base, "event_action": "resolve"}
    summary = f"{item['rule']}{_still(item)}: {item['summary']}"
    if len(summary) > 1024:  # PagerDuty's limit
        summary = summary[:1023] + "\u2026"
    details: dict[str, Any] = {
        "rule": item["rule"],
        "metric": item["metric"],
        "labels": item["labels"],
        "value": _finite(item.get("value")),
        "value_text": item.get("value_text"),
        "condition": item.get("condition"),
        "window": payload["window"],
        "granularity": payload["granularity"],
        "since": item.get("since"),
        "firing_for": item.get("firing_for"),
        "runbook": item.get("runbook"),
        "folded": render.folded_text(item),
        "route": payload["route"],
        "run_id": payload["run_id"],
        "figures": payload.get("store"),
    }
    details.update({k: _finite(item[k]) for k in _EXTRA_DETAILS if item.get(k) is not None})
    links = []
    if _is_url(item.get("runbook")):
        links.append({"href": item["runbook"], "text": f"runbook: {item['rule']}"})
    if _is_url(payload.get("link")):
        links.append({"href": payload["link"], "text": "where to look next"})
    event: dict[str, Any] = {
        **base,
        "event_action": "trigger",
        "payload": {
            "summary": summary,
            "source": cfg.source,
            "severity": cfg.severity(item["severity"]),
            "timestamp": rfc3339(payload["window_end"]),  # when the judged window closed
            "component": item["metric"],
            "group": payload["route"],
            "class": item["rule"],
            "custom_details": {k: v for k, v in details.items() if v is not None},
        },
        "client": "aimon",
    }
    if links:
        event["links"] = links
    if _is_url(payload.get("link")):
        event["client_url"] = payload["link"]
    return event


class PagerDutyChannel(_HttpJsonChannel):
    """PagerDuty Events API v2: each alert of a notification is one event.

    202 is accepted; 400 (an invalid event, a wrong routing key) is permanent; 429, 5xx
    and network errors are transient. An event PagerDuty accepted is remembered for the
    life of the channel (one delivery run), so a notification retried after a partial
    failure sends only the rest; a retry on a later run may send an accepted event
    again, which PagerDuty folds into the same alert by its dedup_key."""

    def __init__(self, name: str, cfg: PagerDutyChannelConfig):
        self.name = name
        self.cfg = cfg
        self.routing_key = resolve_secret(
            cfg.routing_key_env, cfg.routing_key_secret, f"pagerduty channel {name} routing key"
        )
        self.secrets = (self.routing_key,)
        self.sleep = time.sleep
        self.log = masked_logger(name, self.secrets)
        self._accepted: set[tuple[str, ...]] = set()

    def events(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        return [pagerduty_event(item, payload, self.cfg, self.routing_key) for item in payload["items"]]

    def send(self, payload: dict[str, Any]) -> None:
        where = f"pagerduty {_display_url(self.cfg.url)}"
        rejected: list[str] = []
        for item, event in zip(payload["items"], self.events(payload), strict=True):
            key = (
                payload["granularity"],
                payload["window_start"],
                payload["route"],
                item["alert_id"],
                item["status"],
                str(bool(item.get("repeat"))),
            )
            if key in self._accepted:
                continue
            what = f"{event['event_action']} of {item['rule']}{{{_label_text(item['labels'])}}}"
            try:
                answer = self._post(self.cfg.url, event, {}, self.cfg)
            except (OSError, http.client.HTTPException) as err:  # refused, reset, DNS, timeout
                raise SendError(f"{where} unreachable: {mask(str(err), self)}", transient=True) from None
            if 200 <= answer.status < 300:
                self._accepted.add(key)
                self.log.debug("%s accepted the %s (dedup_key %s)", where, what, event["dedup_key"])
                continue
            reason = _pagerduty_reason(answer)
            if _transient_status(answer.status):
                # The rest of this notification waits for the retry: the service is busy or down.
                raise SendError(
                    mask(f"{where} answered HTTP {answer.status} to the {what}: {reason}", self), transient=True
                )
            rejected.append(f"HTTP {answer.status} to the {what}: {reason}")
        if rejected:
            raise SendError(
                mask(
                    f"{where} rejected {len(rejected)} event(s), not retried: {'; '.join(rejected)} "
                    "(check the channel's routing key, an Events API v2 integration key of 32 characters)",
                    self,
                ),
                transient=False,
            )


def _pagerduty_reason(answer: _Answer) -> str:
    """'Event object is invalid: Length of 'routing_key' is incorrect ...' from
    {"status": "invalid event", "message": ..., "errors": [...]}, else the raw body."""
    body = answer.json()
    if isinstance(body, dict) and (body.get("message") or body.get("errors")):
        errors = body.get("errors") or []
        return str(body.get("message") or body.get("status")) + (
            f": {'; '.join(str(e) for e in errors)}" if errors else ""
        )
    return answer.text() or "(empty answer)"


def _label_text(labels: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


# -- webhook (Alertmanager's JSON) --------------------------------------------------------


def alertmanager_alert(item: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """One alert as Alertmanager's webhook writes it. Labels: the figure's labels plus
    alertname, severity, metric, route and granularity, the same set silences match on
    (aimon.tasks.alerts.state.alert_labels)."""
    labels = {
        **{k: str(v) for k, v in item["labels"].items()},
        "alertname": item["rule"],
        "severity": item["severity"],
        "metric": item["metric"],
        "route": payload["route"],
        "granularity": payload["granularity"],
    }
    annotations = {
        "summary": f"{item['summary']}{_still(item)}",
        "description": f"{item['metric']}{{{_label_text(item['labels'])}}} = {item['value_text']}; "
        f"condition: {item['condition']}",
        "value": str(item.get("value_text")),
    }
    if item.get("runbook"):
        annotations["runbook_url"] = item["runbook"]
    if item.get("firing_for"):
        annotations["firing_for"] = item["firing_for"]
    if render.folded_text(item):
        annotations["folded"] = str(render.folded_text(item))
    for k in ("causes", "hints"):
        v = item.get(k)
        if v:
            annotations[k] = v if isinstance(v, str) else json.dumps(v, default=str)
    firing = item["status"] == "firing"
    return {
        "status": "firing" if firing else "resolved",
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(item.get("since") or item.get("fired_window_start") or payload["window_start"]),
        # Resolved: known once the window that judged it back within bounds had closed.
        "endsAt": ZERO_TIME if firing else rfc3339(payload["window_end"]),
        "generatorURL": payload.get("link") or "",
        "fingerprint": item["alert_id"],
    }


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    out = dict(maps[0])
    for m in maps[1:]:
        out = {k: v for k, v in out.items() if m.get(k) == v}
    return out


def alertmanager_webhook(
    payload: dict[str, Any], *, receiver: str, external_url: str, max_alerts: int = 0
) -> dict[str, Any]:
    """Alertmanager's webhook body (version 4) for one notification: one group, the
    route's alerts of one window. groupKey is stable per route and granularity, as
    Alertmanager's is per group, so a receiver can thread notifications on it."""
    alerts = [alertmanager_alert(item, payload) for item in payload["items"]]
    shown = alerts[:max_alerts] if max_alerts else alerts
    group = {"granularity": payload["granularity"], "route": payload["route"]}
    return {
        "version": "4",
        "groupKey": "{}:{" + ", ".join(f'{k}="{v}"' for k, v in sorted(group.items())) + "}",
        "truncatedAlerts": len(alerts) - len(shown),
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": external_url,
        "alerts": shown,
    }


def parse_headers(text: str, what: str) -> dict[str, str]:
    """'Name: value' lines -> headers. The error names the line, never its content (a secret)."""
    out: dict[str, str] = {}
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not re.match(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", name.strip()) or not value.strip():
            raise SendError(
                f"{what}: line {i} is not 'Name: value' (e.g. 'Authorization: Bearer ...')", transient=False
            )
        out[name.strip()] = value.strip()
    return out


class WebhookChannel(_HttpJsonChannel):
    """POSTs Alertmanager's webhook JSON: any 2xx is accepted; 408, 429, 5xx and network
    errors are transient; other answers are permanent (fix the URL or the auth header)."""

    def __init__(self, name: str, cfg: WebhookChannelConfig):
        self.name = name
        self.cfg = cfg
        secrets: list[str] = []
        if cfg.url:
            self.url = cfg.url
        else:
            self.url = resolve_secret(cfg.url_env, cfg.url_secret, f"webhook channel {name} URL")
            secrets.append(self.url)
            if not _is_url(self.url):
                where = f"environment variable {cfg.url_env}" if cfg.url_env else f"Secret block {cfg.url_secret!r}"
                raise SendError(f"webhook channel {name}: {where} does not hold an http(s) URL", transient=False)
        self.headers: dict[str, str] = {}
        if cfg.headers_env or cfg.headers_secret:
            what = f"webhook channel {name} headers ({cfg.headers_env or f'Secret block {cfg.headers_secret!r}'})"
            self.headers = parse_headers(resolve_secret(cfg.headers_env, cfg.headers_secret, what), what)
            secrets += list(self.headers.values())
        self.secrets = tuple(secrets)
        self.sleep = time.sleep

    def body(self, payload: dict[str, Any]) -> dict[str, Any]:
        return alertmanager_webhook(
            payload,
            receiver=self.cfg.receiver or self.name,
            external_url=self.cfg.external_url or payload.get("link") or "",
            max_alerts=self.cfg.max_alerts,
        )

    def send(self, payload: dict[str, Any]) -> None:
        where = f"webhook {_display_url(self.url)}"
        try:
            answer = self._post(self.url, self.body(payload), self.headers, self.cfg)
        except (OSError, http.client.HTTPException) as err:
            raise SendError(f"{where} unreachable: {mask(str(err), self)}", transient=True) from None
        if 200 <= answer.status < 300:
            return
        raise SendError(
            mask(f"{where} answered HTTP {answer.status}: {answer.text(200) or '(empty answer)'}", self),
            transient=_transient_status(answer.status),
        )


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
