"""One span as one interaction: the mapping of OTLP span attributes (GenAI semantic
conventions, OpenInference) to the contract's columns, the report of what was loaded
and skipped, and the batched load into a sink. aimon.capture.otlp (files),
aimon.capture.otlp_workers (their worker processes) and aimon.capture.phoenix (a
Phoenix server) feed it; the mapping table is in aimon.capture.otlp and docs/capture.md.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aimon.capture.masking import Masker
from aimon.capture.record import STATUSES
from aimon.capture.sinks import Sink


@dataclass
class TraceReport:
    spans: int = 0
    loaded: int = 0  # new rows (a span already loaded is skipped)
    valid: int = 0
    unmapped: int = 0  # spans that are not LLM calls
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> spans or lines

    def summary(self) -> str:
        out = f"{self.loaded:,} new rows from {self.spans:,} spans ({self.unmapped:,} not LLM calls)"
        if self.valid > self.loaded:
            out += f", {self.valid - self.loaded:,} already loaded"
        if self.skipped:
            out += "; skipped: " + ", ".join(f"{n:,} {reason}" for reason, n in self.skipped.most_common())
        return out


def _value(v: Mapping[str, Any]) -> Any:
    """An OTLP AnyValue in JSON (intValue is a string in proto3 JSON)."""
    for key, x in v.items():  # one key: the value's kind
        if key == "stringValue" or key == "boolValue" or key == "doubleValue":
            return x
        if key == "intValue":
            return int(x)
        if key == "arrayValue":
            return [_value(i) for i in x.get("values", [])]
        if key == "kvlistValue":
            return {kv["key"]: _value(kv.get("value", {})) for kv in x.get("values", [])}
    return None


def attributes(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    out = {}
    for kv in items:
        v = kv.get("value") or {}
        x = v.get("stringValue")  # the common case first
        out[kv["key"]] = x if x is not None else _value(v)
    return out


_EPOCH = dt.datetime(1970, 1, 1)


def _text(messages: Any) -> str | None:
    """The text parts of gen_ai.*.messages (a JSON string or a list)."""
    if isinstance(messages, str):
        try:
            messages = json.loads(messages)
        except ValueError:
            return messages
    if not isinstance(messages, list):
        return None
    parts = []
    for m in messages:
        for p in m.get("parts", []) if isinstance(m, dict) else []:
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("content"), str):
                parts.append(p["content"])
        if isinstance(m, dict) and isinstance(m.get("content"), str):
            parts.append(m["content"])
    return "\n".join(parts) if parts else None


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)) and v == int(v):
        return int(v)
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return None


_TOKENS = (
    ("input_tokens", "gen_ai.usage.input_tokens", "llm.token_count.prompt"),
    ("output_tokens", "gen_ai.usage.output_tokens", "llm.token_count.completion"),
    ("cached_input_tokens", "gen_ai.usage.cache_read.input_tokens", "llm.token_count.prompt_details.cache_read"),
)
_LABELS = (("experiment", "aimon.experiment"), ("variant", "aimon.variant"))


def span_row(
    span: Mapping[str, Any], attrs: Mapping[str, Any], resource: Mapping[str, Any], masker: Masker
) -> dict[str, Any] | None:
    """The interaction of one span, or None when it is not an LLM call. Labels are
    text (an int attribute as its digits); token counts integers or left out; the
    contract's remaining rules are span_reason()'s."""
    get = attrs.get
    model = get("gen_ai.request.model") or get("gen_ai.response.model")
    genai = bool(model)
    if not genai:
        model = get("llm.model_name")
        if not model:
            return None
        genai = "gen_ai.input.messages" in attrs or "gen_ai.output.messages" in attrs
    start = int(span["startTimeUnixNano"])
    end = span.get("endTimeUnixNano")
    end = int(end) if end else start
    error = get("error.type")
    if error in STATUSES:
        status = error
    else:
        failed = (span.get("status") or {}).get("code") in (2, "STATUS_CODE_ERROR")
        status = "server_error" if failed or error else "ok"
    rid = get("aimon.request_id") or get("gen_ai.response.id") or f"{span.get('traceId')}-{span.get('spanId')}"
    row: dict[str, Any] = {
        "timestamp": _EPOCH + dt.timedelta(microseconds=start // 1000),
        "request_id": str(rid),
        "model": str(model),
        "status": status,
        "latency_seconds": max(0, end - start) / 1e9,
    }
    endpoint = get("aimon.endpoint") or resource.get("service.name")
    if endpoint is not None:
        row["endpoint"] = str(endpoint)
    for col, key, other in _TOKENS:
        v = get(key)
        if v is None:
            v = get(other)
        if v is not None and (n := _int(v)) is not None:
            row[col] = n
    reasons = get("gen_ai.response.finish_reasons")
    if isinstance(reasons, list) and reasons:
        row["finish_reason"] = str(reasons[0])
    for col, key in _LABELS:
        v = get(key)
        if v is not None:
            row[col] = str(v)
    if genai:  # GenAI conventions: only their messages are text
        prompt, response = _text(get("gen_ai.input.messages")), _text(get("gen_ai.output.messages"))
    else:  # OpenInference
        prompt, response = get("input.value"), get("output.value")
    for col, text in (("prompt", prompt), ("response", response)):
        if isinstance(text, str) and (kept := masker.text(text)) is not None:
            row[col] = kept
    return row


def span_reason(row: Mapping[str, Any]) -> str | None:
    """What check() would say of a span_row() row: its types hold by construction, so
    only the counts' rules are left (the same reasons: tests/test_capture_otel.py)."""
    for col, _, _ in _TOKENS:
        v = row.get(col)
        if v is not None and v < 0:
            return f"negative {col}"
    cached, inp = row.get("cached_input_tokens"), row.get("input_tokens")
    if cached is not None and inp is not None and cached > inp:
        return "cached_input_tokens above input_tokens"
    return None


def spans_of(docs: Iterable[Any], report: TraceReport, masker: Masker) -> Iterator[dict[str, Any]]:
    for doc in docs:
        if not isinstance(doc, dict) or "resourceSpans" not in doc:
            report.skipped["not an OTLP trace export"] += 1
            continue
        for rs in doc["resourceSpans"]:
            resource = attributes((rs.get("resource") or {}).get("attributes", []))
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    # mapped()'s work inline (a span at a time, ~1 us saved a span)
                    report.spans += 1
                    try:
                        row = span_row(span, attributes(span.get("attributes", ())), resource, masker)
                    except (KeyError, TypeError, ValueError, AttributeError) as err:
                        report.skipped[f"malformed span ({type(err).__name__})"] += 1
                        continue
                    if row is None:
                        report.unmapped += 1
                    elif (reason := span_reason(row)) is not None:
                        report.skipped[reason] += 1
                    else:
                        yield row


def mapped(shape: Any, resource: Mapping[str, Any], report: TraceReport, masker: Masker) -> dict[str, Any] | None:
    """One span's row, counted in `report`: None when it is malformed, not an LLM call,
    or breaks the contract. `shape()` gives the span in the OTLP shape and its attributes."""
    report.spans += 1
    try:
        span, attrs = shape()
        row = span_row(span, attrs, resource, masker)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        report.skipped[f"malformed span ({type(err).__name__})"] += 1
        return None
    if row is None:
        report.unmapped += 1
        return None
    reason = span_reason(row)
    if reason is not None:
        report.skipped[reason] += 1
        return None
    return row


def load_rows(rows: Iterable[dict[str, Any]], sink: Sink, report: TraceReport, batch_size: int = 10_000) -> None:
    from aimon.capture.ingest import _session  # noqa: PLC0415  (ingest imports nothing from here)

    batch: list[dict[str, Any]] = []
    with _session(sink):
        for row in rows:
            batch.append(row)
            if len(batch) >= batch_size:
                _flush(sink, batch, report)
                batch = []
        if batch:
            _flush(sink, batch, report)


def _flush(sink: Sink, batch: list[dict[str, Any]], report: TraceReport) -> None:
    added = sink.write(batch)
    report.valid += len(batch)
    report.loaded += len(batch) if added is None else added


# Inputs this large are parsed and mapped by worker processes (the sink's writes stay
# in this one): parsing and mapping are ~9 us of Python a span, the sink's share ~4.
