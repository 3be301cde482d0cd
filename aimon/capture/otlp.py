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

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from aimon.capture.masking import Masker
from aimon.capture.otlp_workers import load_from_workers
from aimon.capture.record import loads
from aimon.capture.sinks import Sink
from aimon.capture.span_rows import TraceReport, load_rows, spans_of
from aimon.errors import CaptureError


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


PARALLEL_BYTES = 8 * 1024 * 1024


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
        load_from_workers(files, sink, m, report, workers)
    return report
