"""Real HTTP servers on loopback for the PagerDuty and webhook channel tests.

`PagerDutyServer` speaks the Events API v2 (POST /v2/enqueue): it checks each event
as PagerDuty documents it (a 32-character routing key, event_action trigger,
acknowledge or resolve, dedup_key at most 255 characters, a trigger's payload with
summary <= 1024 characters, source and severity critical/error/warning/info) and
answers 202 {"status": "success", "message": "Event processed", "dedup_key": ...} or
400 {"status": "invalid event", "message": "Event object is invalid", "errors": [...]}.
It keeps PagerDuty's alert model per dedup_key: a trigger opens an alert or adds to the
one open under that key, a resolve closes it (and is dropped when none is open).

`WebhookServer` records what is POSTed and answers 200. Both take a `plan`: a list
of (status, headers) answered to the next requests, one each, before the normal answer
(e.g. [(429, {"Retry-After": "1"}), (500, {})]); None in it answers that request normally.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from tests.servers import serve, shut

PD_SEVERITIES = ("critical", "error", "warning", "info")


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any
    at: float  # time.monotonic()
    status: int  # what the server answered


@dataclass
class PdAlert:
    dedup_key: str
    status: str  # "triggered" or "resolved"
    triggers: int  # trigger events folded into it
    severity: str
    summary: str


class _Recording:
    """A ThreadingHTTPServer on 127.0.0.1 that records POSTs and follows `plan`."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.plan: list[tuple[int, dict[str, str]] | None] = []
        self.port = 0
        self.lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def answer(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError

    def planned(self, status: int, headers: dict[str, str]) -> bytes:
        return b'{"status": "throttle event", "message": "Too many requests"}' if status == 429 else b"error"

    def start(self) -> Self:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = dict(self.headers.items())
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                with server.lock:
                    step = server.plan.pop(0) if server.plan else None
                    if step is not None:
                        status, extra = step
                        out = server.planned(status, extra)
                    else:
                        status, extra, out = server.answer(self.path, headers, body)
                    server.requests.append(Request(self.path, headers, body, time.monotonic(), status))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        # A short poll: stop() (shutdown) waits up to one poll interval, 0.5 s by default.
        self._httpd, self._thread = serve(Handler, 0, poll_interval=0.02)
        self.port = self._httpd.server_address[1]
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            shut(self._httpd, self._thread)
            self._httpd = None


def pd_event_errors(event: Any) -> list[str]:
    """What PagerDuty's Events API v2 rejects in an event (empty: valid)."""
    if not isinstance(event, dict):
        return ["Event object is not a JSON object"]
    errors = []
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = event.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        errors.append("'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')")
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append("'dedup_key' is required for acknowledge and resolve events")
    if action == "trigger":
        p = event.get("payload")
        if not isinstance(p, dict):
            errors.append("'payload' is missing or not an object")
        else:
            for k in ("summary", "source", "severity"):
                if not isinstance(p.get(k), str) or not p.get(k):
                    errors.append(f"'payload.{k}' is missing or blank")
            if isinstance(p.get("summary"), str) and len(p["summary"]) > 1024:
                errors.append("'payload.summary' is longer than 1024 characters")
            if p.get("severity") not in PD_SEVERITIES:
                errors.append("'payload.severity' is invalid (must be critical, error, warning or info)")
            if "custom_details" in p and not isinstance(p["custom_details"], dict):
                errors.append("'payload.custom_details' must be an object")
        for link in event.get("links") or []:
            if not isinstance(link, dict) or not isinstance(link.get("href"), str):
                errors.append("each of 'links' needs an 'href'")
    return errors


class PagerDutyServer(_Recording):
    def __init__(self) -> None:
        super().__init__()
        self.alerts: dict[str, PdAlert] = {}  # dedup_key -> the alert last opened under it
        self.opened = 0  # alerts (incidents) opened

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2/enqueue"

    def open_alerts(self) -> list[PdAlert]:
        return [a for a in self.alerts.values() if a.status == "triggered"]

    def accepted(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.status == 202]

    def answer(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        if path != "/v2/enqueue":
            return 404, {}, b'{"status": "not found"}'
        errors = pd_event_errors(body)
        if errors:
            out = {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
            return 400, {}, json.dumps(out).encode()
        key = body.get("dedup_key") or f"auto-{len(self.requests)}"
        current = self.alerts.get(key)
        if body["event_action"] == "trigger":
            p = body["payload"]
            if current is None or current.status == "resolved":
                self.alerts[key] = PdAlert(key, "triggered", 1, p["severity"], p["summary"])
                self.opened += 1
            else:
                current.triggers += 1
                current.severity, current.summary = p["severity"], p["summary"]
        elif body["event_action"] == "resolve" and current is not None:
            current.status = "resolved"
        out = {"status": "success", "message": "Event processed", "dedup_key": key}
        return 202, {}, json.dumps(out).encode()


class WebhookServer(_Recording):
    path = "/hooks/aimon-7f3c2b"  # the part of a webhook URL that is often the secret

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def delivered(self) -> list[Request]:
        return [r for r in self.requests if r.status == 200]

    def answer(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        return 200, {}, b"ok"
