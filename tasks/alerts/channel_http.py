"""HTTP JSON delivery for the PagerDuty and webhook channels, over the standard
library's urllib: one POST with a timeout, a 429's Retry-After waited out a few times,
and the helpers both bodies use (RFC 3339 times, finite numbers, label text)."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

# Alertmanager's "no end yet" for a firing alert (Go's zero time).
ZERO_TIME = "0001-01-01T00:00:00Z"


class Answer:
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


def post_json(url: str, body: Any, headers: dict[str, str], timeout: float) -> Answer:
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
            return Answer(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return Answer(err.code, err.headers, err.read())


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


def transient_status(status: int) -> bool:
    return status in (408, 429) or status >= 500


def display_url(url: str) -> str:
    """What an error may say about a URL that may itself be the secret: scheme, host, port."""
    u = urlsplit(url)
    host = u.hostname or "?"
    port = f":{u.port}" if u.port else ""
    return f"{u.scheme}://{host}{port}" + ("/..." if u.path not in ("", "/") or u.query else "")


class HttpJsonChannel:
    """What the PagerDuty and webhook channels share: a POST with a timeout, a 429's
    Retry-After waited out up to `max_retries` times (when it is at most
    `max_retry_after_seconds`), and every failure as a SendError with secrets masked."""

    name: str
    secrets: tuple[str, ...]
    sleep: Callable[[float], None]

    def _post(self, url: str, body: Any, headers: dict[str, str], cfg: Any) -> Answer:
        for attempt in range(cfg.max_retries + 1):
            answer = post_json(url, body, headers, cfg.timeout_seconds)
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


def finite(v: Any) -> Any:
    return None if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))) else v


def is_url(v: str | None) -> bool:
    return bool(v) and re.match(r"^https?://\S+$", v or "") is not None


def still_text(item: dict[str, Any]) -> str:
    if not item.get("repeat"):
        return ""
    return f" (still firing, {item['firing_for']})" if item.get("firing_for") else " (still firing)"


def label_text(labels: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
