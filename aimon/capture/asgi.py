"""AimonMiddleware: a pure ASGI middleware (FastAPI, Starlette, any ASGI app) that
logs each request on the configured paths as one interaction.

Pure ASGI, not Starlette's BaseHTTPMiddleware: the response streams through untouched
(a server-sent-events answer is not buffered), and the latency is measured to the last
body byte. Per request:

- the correlation id: the `X-Request-ID` header, or a new one; echoed on the response,
  with `X-Process-Time` (seconds to the response's headers);
- the status: 2xx/3xx ``ok``; 429 ``rate_limit_exceeded``; 408/504 ``timeout``; 404
  ``model_not_found``; other 4xx ``invalid_request``; 5xx ``server_error``; an
  OpenAI-shaped error body's ``error.code``/``error.type`` when it names a contract
  error type (``content_filter``, ...); an exception from the app: ``server_error``;
- the model: the `model_header` header, else the JSON request body's ``model``, else
  the JSON response's ``model``;
- tokens: an OpenAI-shaped ``usage`` in the JSON response, or in the last
  ``data:`` event of a streamed one (``stream_options: {include_usage: true}``);
- handlers enrich the record through ``request.state.aimon`` (a dict: experiment,
  variant, user_id, prompt, response, ... any InteractionLogger.log keyword).

Bodies are read only up to `max_body` bytes, and only on the configured paths.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from aimon.capture.logger import InteractionLogger
from aimon.capture.record import STATUSES, loads

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def status_error(code: int) -> str:
    if code < 400:
        return "ok"
    if code == 429:
        return "rate_limit_exceeded"
    if code in (408, 504):
        return "timeout"
    if code == 404:
        return "model_not_found"
    return "invalid_request" if code < 500 else "server_error"


def _json(body: bytes) -> Any:
    try:
        return loads(body)  # orjson: the two parses a request are a third of the middleware's cost
    except ValueError:
        return None


def _last_usage(stream: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The usage and model of a server-sent-events body: the last `data:` event with a
    usage object (OpenAI's final chunk with stream_options.include_usage)."""
    usage, model = None, None
    for line in stream.splitlines():
        if not line.startswith(b"data:") or b"usage" not in line:
            continue
        doc = _json(line[5:].strip())
        if isinstance(doc, dict) and isinstance(doc.get("usage"), dict):
            usage, model = doc["usage"], doc.get("model") or model
    return usage, model


class AimonMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        logger: InteractionLogger,
        *,
        paths: Iterable[str] = ("/",),
        model_header: str = "x-model",
        request_id_header: str = "x-request-id",
        endpoint: Callable[[Scope], str] | None = None,
        max_body: int = 1_000_000,
    ):
        """`paths`: path prefixes to log (others pass straight through). `endpoint`: the
        endpoint label of a request (default: its path without the leading slash)."""
        self.app = app
        self.logger = logger
        self.paths = tuple(paths)
        self.model_header = model_header.lower().encode()
        self.rid_header = request_id_header.lower().encode()
        self.endpoint = endpoint
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.paths):
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        rid = model = None
        for k, v in scope["headers"]:
            if k == self.rid_header:
                rid = v.decode("latin-1")
            elif k == self.model_header:
                model = v.decode("latin-1")
        rid = rid or self.logger.new_id()
        rec: dict[str, Any] = {}
        scope.setdefault("state", {})["aimon"] = rec
        req_body: list[bytes] = []
        req_size = 0
        resp_body: list[bytes] = []
        resp_size = 0
        code = 500
        is_json = is_stream = False
        process_time = 0.0

        async def recv() -> Message:
            nonlocal req_size
            msg = await receive()
            if model is None and msg["type"] == "http.request" and req_size < self.max_body:
                chunk = msg.get("body", b"")
                req_body.append(chunk)
                req_size += len(chunk)
            return msg

        async def snd(msg: Message) -> None:
            nonlocal code, is_json, is_stream, resp_size, process_time
            if msg["type"] == "http.response.start":
                code = msg["status"]
                for k, v in msg.get("headers", ()):
                    if k == b"content-type":
                        is_json = v.startswith(b"application/json")
                        is_stream = v.startswith(b"text/event-stream")
                process_time = time.perf_counter() - t0
                msg["headers"] = [
                    *msg.get("headers", ()),
                    (b"x-request-id", rid.encode("latin-1")),
                    (b"x-process-time", f"{process_time:.6f}".encode()),
                ]
            elif msg["type"] == "http.response.body" and (is_json or is_stream) and resp_size < self.max_body:
                chunk = msg.get("body", b"")
                resp_body.append(chunk)
                resp_size += len(chunk)
            await send(msg)

        failed = False
        try:
            await self.app(scope, recv, snd)
        except BaseException:
            failed = True
            raise
        finally:
            self._log(scope, rid, model, rec, code, failed, t0, req_body, resp_body, is_json, is_stream)

    def _log(
        self,
        scope: Scope,
        rid: str,
        model: str | None,
        rec: dict[str, Any],
        code: int,
        failed: bool,
        t0: float,
        req_body: list[bytes],
        resp_body: list[bytes],
        is_json: bool,
        is_stream: bool,
    ) -> None:
        """The request's part: its clock, endpoint and captured bytes; the parsing and
        the row are the flusher's (InteractionLogger.defer), off the request path."""
        latency = time.perf_counter() - t0  # the last body byte has been sent
        endpoint = self.endpoint(scope) if self.endpoint else scope["path"].lstrip("/") or "/"
        self.logger.defer(
            request_fields,
            dt.datetime.now(dt.UTC),
            endpoint,
            rid,
            model,
            rec,
            code,
            failed,
            latency,
            req_body,
            resp_body,
            is_json,
            is_stream,
        )


def request_fields(
    timestamp: dt.datetime,
    endpoint: str,
    rid: str,
    model: str | None,
    rec: dict[str, Any],
    code: int,
    failed: bool,
    latency: float,
    req_body: list[bytes],
    resp_body: list[bytes],
    is_json: bool,
    is_stream: bool,
) -> dict[str, Any]:
    """One request's interaction from what the middleware captured (in the flusher)."""
    status = "server_error" if failed else status_error(code)
    usage: Any = None
    if model is None and req_body:
        doc = _json(b"".join(req_body))
        if isinstance(doc, dict) and isinstance(doc.get("model"), str):
            model = doc["model"]
    if resp_body and is_json:
        doc = _json(b"".join(resp_body))
        if isinstance(doc, dict):
            usage = doc.get("usage")
            model = model or doc.get("model")
            err = doc.get("error")
            if isinstance(err, dict) and status != "ok":
                for key in ("code", "type"):
                    if err.get(key) in STATUSES:
                        status = err[key]
                        break
    elif resp_body and is_stream:
        usage, streamed_model = _last_usage(b"".join(resp_body))
        model = model or streamed_model
    fields: dict[str, Any] = {
        "timestamp": timestamp,
        "model": model or "unknown",
        "status": status,
        "endpoint": endpoint,
        "latency_seconds": latency,
        "request_id": rid,
    }
    if isinstance(usage, dict):
        inp = usage.get("prompt_tokens")
        fields["input_tokens"] = inp if inp is not None else usage.get("input_tokens")
        out = usage.get("completion_tokens")
        fields["output_tokens"] = out if out is not None else usage.get("output_tokens")
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict) and details.get("cached_tokens") is not None:
            fields["cached_input_tokens"] = details["cached_tokens"]
    fields.update(rec)
    return fields
