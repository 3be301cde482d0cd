"""The webhook channel: Alertmanager's webhook JSON (version 4), so anything that
takes Alertmanager's notifications takes aimon's."""

from __future__ import annotations

import http.client
import json
import re
import time
from typing import Any

from aimon.config.channels import WebhookChannelConfig
from aimon.errors import SendError
from aimon.tasks.alerts import render
from aimon.tasks.alerts.channel_base import mask, resolve_secret
from aimon.tasks.alerts.channel_http import (
    ZERO_TIME,
    HttpJsonChannel,
    display_url,
    is_url,
    label_text,
    rfc3339,
    still_text,
    transient_status,
)


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
        "summary": f"{item['summary']}{still_text(item)}",
        "description": f"{item['metric']}{{{label_text(item['labels'])}}} = {item['value_text']}; "
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


class WebhookChannel(HttpJsonChannel):
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
            if not is_url(self.url):
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
        where = f"webhook {display_url(self.url)}"
        try:
            answer = self._post(self.url, self.body(payload), self.headers, self.cfg)
        except (OSError, http.client.HTTPException) as err:
            raise SendError(f"{where} unreachable: {mask(str(err), self)}", transient=True) from None
        if 200 <= answer.status < 300:
            return
        raise SendError(
            mask(f"{where} answered HTTP {answer.status}: {answer.text(200) or '(empty answer)'}", self),
            transient=transient_status(answer.status),
        )
