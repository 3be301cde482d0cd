"""What `InteractionLogger.call(...)` works with: the record a timed call fills in
(`CallRecord`, with OpenAI and Anthropic usage objects read by `usage()`), and the
contract's error type of an exception from a provider SDK or HTTP client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def error_type_of(exc: BaseException) -> str:
    """The contract's error type for an exception from a provider SDK or HTTP client:
    by its HTTP status (status_code / status / response.status_code), else its name."""
    code = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    if code is None:
        code = getattr(getattr(exc, "response", None), "status_code", None)
    name = type(exc).__name__.lower()
    if "ratelimit" in name or code == 429:
        return "rate_limit_exceeded"
    if "timeout" in name or isinstance(exc, TimeoutError) or code in (408, 504):
        return "timeout"
    if "contentfilter" in name or "content_filter" in str(exc).lower():
        return "content_filter"
    if "notfound" in name or code == 404:
        return "model_not_found"
    if isinstance(code, int) and 400 <= code < 500:
        return "invalid_request"
    if (isinstance(code, int) and code >= 500) or "server" in name or "connection" in name:
        return "server_error"
    return "other"


class CallRecord:
    """What `logger.call(...)` yields: set its attributes (input_tokens, response, ...)
    or `usage(...)` an OpenAI-shaped usage object; the call's latency and an exception's
    error type are recorded when the block ends."""

    def __init__(self, fields: dict[str, Any]):
        self.__dict__["fields"] = fields

    def __getattr__(self, name: str) -> Any:
        return self.__dict__["fields"].get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__["fields"][name] = value

    def usage(self, usage: Any) -> None:
        """Tokens from an OpenAI (prompt_tokens, completion_tokens,
        prompt_tokens_details.cached_tokens) or Anthropic (input_tokens, output_tokens,
        cache_read_input_tokens) usage object or dict."""
        get = usage.get if isinstance(usage, Mapping) else (lambda k, d=None: getattr(usage, k, d))
        f = self.__dict__["fields"]
        inp = get("prompt_tokens", None)
        if inp is None:
            inp = get("input_tokens", None)
            cached = get("cache_read_input_tokens", None)
            if inp is not None and cached:
                inp += cached  # Anthropic counts cache reads apart from input_tokens
        else:
            details = get("prompt_tokens_details", None)
            dget = details.get if isinstance(details, Mapping) else (lambda k, d=None: getattr(details, k, d))
            cached = dget("cached_tokens", None) if details is not None else None
        out = get("completion_tokens", None)
        f["input_tokens"] = inp if inp is not None else f.get("input_tokens")
        f["output_tokens"] = out if out is not None else get("output_tokens", f.get("output_tokens"))
        if cached is not None:
            f["cached_input_tokens"] = cached
