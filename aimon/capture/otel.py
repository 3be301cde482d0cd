"""Logged LLM calls as OpenTelemetry spans in the GenAI semantic conventions, exported
over OTLP to any collector (Phoenix, Jaeger, Tempo, an OpenTelemetry Collector).

    spans = GenAISpans(endpoint="http://127.0.0.1:6006")   # OTLP/HTTP; or tracer_provider=...
    logger = InteractionLogger(url, spans=spans)

One CLIENT span per call, named ``chat <model>``, timed from the call's start to its
end (the logged timestamp and latency), with gen_ai.operation.name,
gen_ai.provider.name (given, or known from the model's name), gen_ai.request.model,
gen_ai.usage.input_tokens / output_tokens / cache_read.input_tokens,
gen_ai.response.finish_reasons, gen_ai.response.id (the request id), error.type and an
ERROR status for a failed call. Content (gen_ai.input.messages /
gen_ai.output.messages) only when the logger's `store_text` allows it, masked as the
table's copy is. Needs the `capture` extra (opentelemetry-sdk and its OTLP exporter).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping
from typing import Any

from aimon.capture.record import utc_naive

PROVIDERS = (
    (("gpt-", "o1", "o3", "o4", "text-embedding", "davinci"), "openai"),
    (("claude",), "anthropic"),
    (("gemini",), "gcp.gemini"),
    (("command",), "cohere"),
    (("mistral", "mixtral", "codestral"), "mistral_ai"),
    (("deepseek",), "deepseek"),
    (("grok",), "x_ai"),
)


def provider_of(model: str) -> str | None:
    m = model.lower()
    for prefixes, name in PROVIDERS:
        if m.startswith(prefixes):
            return name
    return None


def _messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}], ensure_ascii=False)


def genai_attributes(fields: Mapping[str, Any], provider: str | None = None) -> dict[str, Any]:
    """The span attributes of one logged row (contract names; prompt and response as
    the logger's masking left them: absent with store_text none)."""
    model = str(fields.get("model") or "unknown")
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": fields.get("operation") or "chat",
        "gen_ai.request.model": model,
    }
    prov = provider or provider_of(model)
    if prov:
        attrs["gen_ai.provider.name"] = prov
    for key, attr in (
        ("input_tokens", "gen_ai.usage.input_tokens"),
        ("output_tokens", "gen_ai.usage.output_tokens"),
        ("cached_input_tokens", "gen_ai.usage.cache_read.input_tokens"),
    ):
        if isinstance(fields.get(key), int):
            attrs[attr] = fields[key]
    if fields.get("finish_reason"):
        attrs["gen_ai.response.finish_reasons"] = [str(fields["finish_reason"])]
    if fields.get("request_id"):
        attrs["gen_ai.response.id"] = str(fields["request_id"])
    if fields.get("endpoint"):
        attrs["aimon.endpoint"] = str(fields["endpoint"])
    for key in ("experiment", "variant"):
        if fields.get(key):
            attrs[f"aimon.{key}"] = str(fields[key])
    status = fields.get("status") or "ok"
    if status != "ok":
        attrs["error.type"] = str(status)
    for key, attr, role in (
        ("prompt", "gen_ai.input.messages", "user"),
        ("response", "gen_ai.output.messages", "assistant"),
    ):
        if isinstance(fields.get(key), str):
            attrs[attr] = _messages(role, fields[key])
    return attrs


class GenAISpans:
    def __init__(
        self,
        tracer_provider: Any = None,
        *,
        endpoint: str | None = None,
        service_name: str = "aimon-capture",
        provider: str | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        """`endpoint`: an OTLP/HTTP collector's base URL (spans go to /v1/traces), with
        its own batching provider; else `tracer_provider`, else the process's global
        one (an app already set up with OpenTelemetry). `provider`: the
        gen_ai.provider.name of every span (default: from the model's name)."""
        from opentelemetry import trace  # noqa: PLC0415  the `capture` extra

        self._trace = trace
        self._own = None
        if endpoint is not None:
            tracer_provider = self._own = otlp_provider(endpoint, service_name, headers)
        self.tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("aimon.capture")
        self.provider = provider

    def record(self, row: Mapping[str, Any]) -> None:
        """One span for a logged row (the flusher calls it, after masking): ending at the
        row's timestamp (naive UTC: when the call was logged), starting `latency_seconds`
        before."""
        from opentelemetry.trace import SpanKind, Status, StatusCode  # noqa: PLC0415

        ts = row.get("timestamp")
        end = (
            int(utc_naive(ts).replace(tzinfo=dt.UTC).timestamp() * 1e9)
            if isinstance(ts, dt.datetime)
            else time.time_ns()
        )
        latency = row.get("latency_seconds")
        start = end - int(float(latency) * 1e9) if isinstance(latency, (int, float)) else end
        attrs = genai_attributes(row, self.provider)
        span = self.tracer.start_span(
            f"{attrs['gen_ai.operation.name']} {attrs['gen_ai.request.model']}",
            kind=SpanKind.CLIENT,
            start_time=start,
            attributes=attrs,
        )
        if "error.type" in attrs:
            span.set_status(Status(StatusCode.ERROR, attrs["error.type"]))
        span.end(end_time=end)

    def flush(self, timeout_ms: int = 10_000) -> None:
        if self._own is not None:
            self._own.force_flush(timeout_ms)

    def shutdown(self) -> None:
        if self._own is not None:
            self._own.shutdown()


def otlp_provider(endpoint: str, service_name: str, headers: Mapping[str, str] | None = None) -> Any:
    """A TracerProvider exporting over OTLP/HTTP (protobuf) to `endpoint`/v1/traces in batches."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    url = endpoint.rstrip("/") + ("" if endpoint.rstrip("/").endswith("/v1/traces") else "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url, headers=dict(headers or {}))))
    return provider
