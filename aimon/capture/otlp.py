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

import collections
import contextlib
import datetime as dt
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aimon.capture.masking import Masker
from aimon.capture.record import STATUSES, loads
from aimon.capture.sinks import Sink, arrow_batch, first_per_id
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
PARALLEL_BYTES = 8 * 1024 * 1024
_TASK_BYTES = 2 * 1024 * 1024


def ingest_otlp(
    paths: Iterable[Path], sink: Sink, masker: Masker | None = None, *, workers: int | None = None
) -> TraceReport:
    """Load OTLP JSON span exports. `workers`: processes parsing and mapping the files'
    documents (default: the machine's cores, up to 4, when the files hold
    PARALLEL_BYTES or more; 1: all in this process). The rows, their order and the
    report are the same either way."""
    report = TraceReport()
    m = masker or Masker("masked")
    files = list(paths)
    for path in files:
        if not path.is_file():
            raise CaptureError(f"{path}: no such file")
    if workers is None:
        big = sum(p.stat().st_size for p in files) >= PARALLEL_BYTES
        workers = min(os.cpu_count() or 1, 4) if big else 1
    if workers <= 1:
        docs = (doc for path in files for doc in _requests(path, report))
        load_rows(spans_of(docs, report, m), sink, report)
    else:
        _load_from_workers(files, sink, m, report, workers)
    return report


def _tasks(paths: list[Path]) -> Iterator[tuple[list[bytes], bool]]:
    """The files' documents in groups of ~_TASK_BYTES: (documents, one per line?)."""
    for path in paths:
        data = path.read_bytes()
        lines = [line for line in data.splitlines() if line.strip()]
        try:
            jsonl = len(lines) > 1 and isinstance(loads(lines[0]), dict)
        except ValueError:
            jsonl = False
        if not jsonl:
            yield [data], False
            continue
        group: list[bytes] = []
        size = 0
        for line in lines:
            group.append(line)
            size += len(line)
            if size >= _TASK_BYTES:
                yield group, True
                group, size = [], 0
        if group:
            yield group, True


@contextlib.contextmanager
def _main_not_reimported() -> Iterator[None]:
    """A spawned worker runs the parent's __main__ module again when it names a file:
    for the `aimon` console script that is the whole CLI's import, 2.4 s a worker. The
    workers need only this module, so while they start __main__ names none."""
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__.pop(k) for k in ("__file__",) if main is not None and k in main.__dict__}
    spec = getattr(main, "__spec__", None)
    if main is not None:
        main.__spec__ = None
    try:
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)
            main.__spec__ = spec


def _worker_init() -> None:
    import gc  # noqa: PLC0415

    import pyarrow  # noqa: F401, PLC0415  imported once, before the first task

    gc.disable()  # as in a load (aimon.capture.ingest._session)


def _map_task(task: tuple[list[bytes], bool], masker: Masker) -> tuple[Any, int, TraceReport]:
    """A worker's part: parse and map one group of documents; the rows as an Arrow
    batch (one per request_id: what the sink's write_arrow takes) and their count."""
    docs, jsonl = task
    report = TraceReport()
    parsed: list[Any] = []
    for doc in docs:
        try:
            v = loads(doc)
        except ValueError:
            report.skipped["line not JSON" if jsonl else "not JSON"] += 1
            continue
        parsed.extend(v if isinstance(v, list) and not jsonl else [v])
    rows = list(spans_of(parsed, report, masker))
    return arrow_batch(first_per_id(rows)), len(rows), report


def _load_from_workers(paths: list[Path], sink: Sink, masker: Masker, report: TraceReport, workers: int) -> None:
    """Every task's rows, in the files' order, mapped by `workers` spawned processes and
    written here; at most two tasks a worker in flight (memory stays bounded)."""
    import functools  # noqa: PLC0415
    import multiprocessing  # noqa: PLC0415
    from concurrent.futures import Future, ProcessPoolExecutor  # noqa: PLC0415

    from aimon.capture.ingest import _session  # noqa: PLC0415

    fn = functools.partial(_map_task, masker=masker)
    write = getattr(sink, "write_arrow", None)
    ctx = multiprocessing.get_context("spawn")
    with _session(sink), ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init) as ex:
        with _main_not_reimported():  # start every worker now, while this process reads the files
            for _ in range(workers):
                ex.submit(_worker_init)
        pending: collections.deque[Future[tuple[Any, int, TraceReport]]] = collections.deque()
        tasks = _tasks(paths)
        for task in tasks:
            pending.append(ex.submit(fn, task))
            if len(pending) >= 2 * workers:
                break
        while pending:
            batch, n, part = pending.popleft().result()
            nxt = next(tasks, None)
            if nxt is not None:
                pending.append(ex.submit(fn, nxt))
            report.spans += part.spans
            report.unmapped += part.unmapped
            report.skipped.update(part.skipped)
            if n:
                added = write(batch) if write is not None else sink.write(batch.to_pylist())
                report.valid += n
                report.loaded += n if added is None else added


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
