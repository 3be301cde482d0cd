"""The PagerDuty channel: Events API v2, trigger on firing, resolve on resolved, the
alert's id as dedup_key, severity mapped."""

from __future__ import annotations

import http.client
import time
from typing import Any

from aimon.config.channels import PagerDutyChannelConfig
from aimon.errors import SendError
from aimon.tasks.alerts import render
from aimon.tasks.alerts.channel_base import mask, masked_logger, resolve_secret
from aimon.tasks.alerts.channel_http import (
    Answer,
    HttpJsonChannel,
    display_url,
    finite,
    is_url,
    label_text,
    rfc3339,
    still_text,
    transient_status,
)

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
    summary = f"{item['rule']}{still_text(item)}: {item['summary']}"
    if len(summary) > 1024:  # PagerDuty's limit
        summary = summary[:1023] + "\u2026"
    details: dict[str, Any] = {
        "rule": item["rule"],
        "metric": item["metric"],
        "labels": item["labels"],
        "value": finite(item.get("value")),
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
    details.update({k: finite(item[k]) for k in _EXTRA_DETAILS if item.get(k) is not None})
    links = []
    if is_url(item.get("runbook")):
        links.append({"href": item["runbook"], "text": f"runbook: {item['rule']}"})
    if is_url(payload.get("link")):
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
    if is_url(payload.get("link")):
        event["client_url"] = payload["link"]
    return event


class PagerDutyChannel(HttpJsonChannel):
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
        where = f"pagerduty {display_url(self.cfg.url)}"
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
            what = f"{event['event_action']} of {item['rule']}{{{label_text(item['labels'])}}}"
            try:
                answer = self._post(self.cfg.url, event, {}, self.cfg)
            except (OSError, http.client.HTTPException) as err:  # refused, reset, DNS, timeout
                raise SendError(f"{where} unreachable: {mask(str(err), self)}", transient=True) from None
            if 200 <= answer.status < 300:
                self._accepted.add(key)
                self.log.debug("%s accepted the %s (dedup_key %s)", where, what, event["dedup_key"])
                continue
            reason = _pagerduty_reason(answer)
            if transient_status(answer.status):
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


def _pagerduty_reason(answer: Answer) -> str:
    """'Event object is invalid: Length of 'routing_key' is incorrect ...' from
    {"status": "invalid event", "message": ..., "errors": [...]}, else the raw body."""
    body = answer.json()
    if isinstance(body, dict) and (body.get("message") or body.get("errors")):
        errors = body.get("errors") or []
        return str(body.get("message") or body.get("status")) + (
            f": {'; '.join(str(e) for e in errors)}" if errors else ""
        )
    return answer.text() or "(empty answer)"
