"""Interactions from traces: OTLP JSON span exports (the OpenTelemetry Collector's file
exporter, one ExportTraceServiceRequest per line or one per file) and spans read from a
Phoenix project, with GenAI-convention (OpenLLMetry, aimon.capture.otel) or
OpenInference attributes. `aimon ingest otlp FILE...` / `aimon ingest phoenix`.

The mapping (docs/capture.md, "Ingest from traces"):

| contract column | GenAI semantic conventions | OpenInference |
|---|---|---|
| timestamp | the span's start | the span's start |
| request_id | aimon.request_id, gen_ai.response.id, else trace id-span id | the same |
| model | gen_ai.request.model, gen_ai.response.model | llm.model_name |
| endpoint | aimon.endpoint, else the resource's service.name | the same |
| status | error.type if a contract error type; an ERROR status: server_error | the same |
| latency_seconds | end - start | end - start |
| input_tokens | gen_ai.usage.input_tokens | llm.token_count.prompt |
| output_tokens | gen_ai.usage.output_tokens | llm.token_count.completion |
| cached_input_tokens | gen_ai.usage.cache_read.input_tokens | llm.token_count.prompt_details.cache_read |
| finish_reason | gen_ai.response.finish_reasons[0] | - |
| prompt, response | gen_ai.input/output.messages' text parts | input.value, output.value |

A span that is not an LLM call (no model attribute: an HTTP or database span, a chain
or retriever span) is counted as unmapped and skipped.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aimon.capture.masking import Masker
from aimon.capture.record import STATUSES, check, loads
from aimon.capture.sinks import Sink
from aimon.errors import CaptureError


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
    return {kv["key"]: _value(kv.get("value") or {}) for kv in items}


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


def span_row(
    span: Mapping[str, Any], attrs: Mapping[str, Any], resource: Mapping[str, Any], masker: Masker
) -> dict[str, Any] | None:
    """The interaction of one span, or None when it is not an LLM call."""
    model = attrs.get("gen_ai.request.model") or attrs.get("gen_ai.response.model")
    genai = bool(model)
    if not genai:
        model = attrs.get("llm.model_name")
        if not model:
            return None
        genai = "gen_ai.input.messages" in attrs or "gen_ai.output.messages" in attrs
    start, end = int(span["startTimeUnixNano"]), int(span.get("endTimeUnixNano") or span["startTimeUnixNano"])
    error = attrs.get("error.type")
    failed = (span.get("status") or {}).get("code") in (2, "STATUS_CODE_ERROR")
    status = error if error in STATUSES else ("server_error" if failed or error else "ok")
    rid = (
        attrs.get("aimon.request_id")
        or attrs.get("gen_ai.response.id")
        or f"{span.get('traceId')}-{span.get('spanId')}"
    )
    reasons = attrs.get("gen_ai.response.finish_reasons")
    if genai:  # GenAI conventions: only their messages are text
        prompt, response = _text(attrs.get("gen_ai.input.messages")), _text(attrs.get("gen_ai.output.messages"))
    else:  # OpenInference
        prompt, response = attrs.get("input.value"), attrs.get("output.value")
    row: dict[str, Any] = {
        "timestamp": _EPOCH + dt.timedelta(microseconds=start // 1000),
        "request_id": str(rid),
        "model": str(model),
        "endpoint": attrs.get("aimon.endpoint") or resource.get("service.name"),
        "status": status,
        "latency_seconds": max(0, end - start) / 1e9,
        "input_tokens": _int(attrs.get("gen_ai.usage.input_tokens", attrs.get("llm.token_count.prompt"))),
        "output_tokens": _int(attrs.get("gen_ai.usage.output_tokens", attrs.get("llm.token_count.completion"))),
        "cached_input_tokens": _int(
            attrs.get("gen_ai.usage.cache_read.input_tokens", attrs.get("llm.token_count.prompt_details.cache_read"))
        ),
        "finish_reason": str(reasons[0]) if isinstance(reasons, list) and reasons else None,
        "experiment": attrs.get("aimon.experiment"),
        "variant": attrs.get("aimon.variant"),
        "prompt": masker.text(prompt) if isinstance(prompt, str) else None,
        "response": masker.text(response) if isinstance(response, str) else None,
    }
    return {k: v for k, v in row.items() if v is not None}


def _requests(path: Path, report: TraceReport) -> Iterator[Mapping[str, Any]]:
    """The ExportTraceServiceRequest documents of a file: one per line (the Collector's
    file exporter), or the whole file as one document (or a list of them)."""
    data = path.read_bytes()
    lines = [line for line in data.splitlines() if line.strip()]
    if len(lines) > 1:
        try:
            first = loads(lines[0])
        except ValueError:
            first = None
        if isinstance(first, dict):  # JSON lines
            yield first
            for line in lines[1:]:
                try:
                    yield loads(line)
                except ValueError:
                    report.skipped["line not JSON"] += 1
            return
    try:
        doc = loads(data)
    except ValueError:
        report.skipped["not JSON"] += 1
        return
    yield from (doc if isinstance(doc, list) else [doc])


def spans_of(docs: Iterable[Any], report: TraceReport, masker: Masker) -> Iterator[dict[str, Any]]:
    for doc in docs:
        if not isinstance(doc, dict) or "resourceSpans" not in doc:
            report.skipped["not an OTLP trace export"] += 1
            continue
        for rs in doc["resourceSpans"]:
            resource = attributes((rs.get("resource") or {}).get("attributes", []))
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    row = mapped(lambda s=span: (s, attributes(s.get("attributes", []))), resource, report, masker)
                    if row is not None:
                        yield row


def mapped(shape: Any, resource: Mapping[str, Any], report: TraceReport, masker: Masker) -> dict[str, Any] | None:
    """One span's row, counted in `report`: None when it is malformed, not an LLM call,
    or breaks the contract. `shape()` gives the span in the OTLP shape and its attributes."""
    report.spans += 1
    try:
        span, attrs = shape()
        row = span_row(span, attrs, resource, masker)
    except (KeyError, TypeError, ValueError) as err:
        report.skipped[f"malformed span ({type(err).__name__})"] += 1
        return None
    if row is None:
        report.unmapped += 1
        return None
    reason = check(row)
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


def ingest_otlp(paths: Iterable[Path], sink: Sink, masker: Masker | None = None) -> TraceReport:
    report = TraceReport()
    m = masker or Masker("masked")

    def docs() -> Iterator[Any]:
        for path in paths:
            if not path.is_file():
                raise CaptureError(f"{path}: no such file")
            yield from _requests(path, report)

    load_rows(spans_of(docs(), report, m), sink, report)
    return report


def flatten(attrs: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested attribute objects ({"llm": {"model_name": ...}}) as dotted keys."""
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _nanos(ts: str) -> int:
    t = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1_000_000) * 1000


def phoenix_span(span: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A span of Phoenix's REST API (GET /v1/projects/{project}/spans) in the OTLP shape
    span_row reads, and its flattened attributes."""
    ctx = span.get("context") or {}
    code = str(span.get("status_code") or "").upper()
    shaped = {
        "traceId": ctx.get("trace_id"),
        "spanId": ctx.get("span_id"),
        "startTimeUnixNano": _nanos(span["start_time"]),
        "endTimeUnixNano": _nanos(span.get("end_time") or span["start_time"]),
        "status": {"code": 2 if code == "ERROR" else 1},
    }
    return shaped, flatten(span.get("attributes") or {})


def phoenix_pages(base_url: str, project: str, *, limit: int = 1000, timeout: float = 30.0) -> Iterator[list[Any]]:
    """The project's spans, a page at a time (cursor pagination)."""
    import urllib.parse  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    cursor: str | None = None
    while True:
        q = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        path = f"/v1/projects/{urllib.parse.quote(project, safe='')}/spans"
        url = f"{base_url.rstrip('/')}{path}?{urllib.parse.urlencode(q)}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                doc = json.load(resp)
        except OSError as err:
            raise CaptureError(f"Phoenix at {base_url}: {err}") from None
        yield doc.get("data") or []
        cursor = doc.get("next_cursor")
        if not cursor:
            return


def ingest_phoenix(base_url: str, project: str, sink: Sink, masker: Masker | None = None) -> TraceReport:
    """Load a Phoenix project's LLM spans as interactions (the mapping above)."""
    report = TraceReport()
    m = masker or Masker("masked")

    def rows() -> Iterator[dict[str, Any]]:
        for page in phoenix_pages(base_url, project):
            for span in page:
                row = mapped(lambda s=span: phoenix_span(s), {"service.name": project}, report, m)
                if row is not None:
                    yield row

    load_rows(rows(), sink, report)
    return report
