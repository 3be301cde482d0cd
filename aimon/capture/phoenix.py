"""`aimon ingest phoenix`: a Phoenix project's spans, read from its REST API page by
page, mapped like OTLP exports (aimon.capture.otlp: the same span_row, Phoenix's
nested attribute objects flattened to dotted names).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from typing import Any

from aimon.capture.masking import Masker
from aimon.capture.sinks import Sink
from aimon.capture.span_rows import TraceReport, load_rows, mapped
from aimon.errors import CaptureError


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
