"""GenAI spans from the logger, exported over OTLP/HTTP to a receiver on loopback that
decodes the real protobuf wire format; and `aimon ingest otlp` turning OTLP JSON span
exports (GenAI conventions and OpenInference) back into the same interactions."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typer.testing import CliRunner

from aimon.capture import InteractionLogger, JsonlSink, WarehouseSink, otlp_workers
from aimon.capture.otel import GenAISpans
from aimon.capture.otlp import ingest_otlp
from aimon.cli import app

T0 = dt.datetime(2026, 12, 6, 10, 0, 0)


class Receiver(BaseHTTPRequestHandler):
    got: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        Receiver.got.append({"path": self.path, "type": self.headers["Content-Type"], "doc": MessageToDict(req)})
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(b"")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    Receiver.got = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def _spans(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for rs in doc.get("resourceSpans", []) for ss in rs.get("scopeSpans", []) for s in ss.get("spans", [])]


def _attrs(span: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for kv in span["attributes"]:
        v = kv["value"]
        out[kv["key"]] = next(iter(v.values())) if len(v) == 1 else v
    return out


def test_logged_calls_reach_an_otlp_collector_as_genai_spans(tmp_path: Path, collector: str) -> None:
    spans = GenAISpans(endpoint=collector, service_name="chat-app")
    with InteractionLogger(JsonlSink(tmp_path / "j"), spans=spans, flush_interval=0.02, store_text="none") as lg:
        lg.log(
            "gpt-4o",
            endpoint="chat",
            request_id="r1",
            input_tokens=12,
            output_tokens=5,
            cached_input_tokens=4,
            latency_seconds=1.5,
            finish_reason="length",
            prompt="secret prompt",
            timestamp=T0,
        )
        lg.log("claude-3-5-sonnet", status="rate_limit_exceeded", request_id="r2", latency_seconds=0.2, timestamp=T0)
    spans.shutdown()
    assert Receiver.got and Receiver.got[0]["path"] == "/v1/traces"
    assert Receiver.got[0]["type"] == "application/x-protobuf"
    got = {(_attrs(s)["gen_ai.response.id"]): s for r in Receiver.got for s in _spans(r["doc"])}
    ok, failed = got["r1"], got["r2"]
    a = _attrs(ok)
    assert ok["name"] == "chat gpt-4o" and ok["kind"] == "SPAN_KIND_CLIENT"
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert (a["gen_ai.request.model"], a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (
        "gpt-4o",
        "12",  # proto3 JSON writes int64 as a string
        "5",
    )
    assert a["gen_ai.usage.cache_read.input_tokens"] == "4" and a["aimon.endpoint"] == "chat"
    assert "gen_ai.input.messages" not in a  # store_text none: no content in the span either
    assert (int(ok["endTimeUnixNano"]) - int(ok["startTimeUnixNano"])) / 1e9 == pytest.approx(1.5)
    end = (T0 - dt.datetime(1970, 1, 1)).total_seconds()
    assert int(ok["endTimeUnixNano"]) / 1e9 == pytest.approx(end)
    b = _attrs(failed)
    assert b["error.type"] == "rate_limit_exceeded" and b["gen_ai.provider.name"] == "anthropic"
    assert failed["status"]["code"] == "STATUS_CODE_ERROR"


def otlp_json(provider_spans: list[Any]) -> dict[str, Any]:
    """What the OpenTelemetry Collector's file exporter writes: the request as proto3 JSON."""
    return MessageToDict(encode_spans(provider_spans))


def test_otlp_exports_load_as_the_interactions_they_came_from(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    spans = GenAISpans(tracer_provider=provider)
    logged = tmp_path / "logged.duckdb"
    with InteractionLogger(f"duckdb:///{logged}", create_table=True, spans=spans, flush_interval=0.02) as lg:
        for i in range(50):
            lg.log(
                "gpt-4o" if i % 2 else "claude-3-5-sonnet",
                endpoint="chat",
                request_id=f"r{i}",
                status="ok" if i % 10 else "timeout",
                input_tokens=100 + i,
                output_tokens=10 + i,
                latency_seconds=0.5 + i / 100,
                prompt=f"question {i} from a@b.com",
                response=f"answer {i}",
                finish_reason="stop",
                timestamp=T0 + dt.timedelta(seconds=i),
            )
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("GET /chat"):  # an HTTP span: not an LLM call
        pass
    # An OpenInference LLM span (what Phoenix's instrumentors write).
    with tracer.start_as_current_span(
        "ChatCompletion",
        attributes={
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "llm.token_count.prompt": 7,
            "llm.token_count.completion": 3,
            "input.value": "hi",
            "output.value": "hello",
        },
    ):
        pass
    export = tmp_path / "traces.jsonl"
    export.write_text(json.dumps(otlp_json(list(exporter.get_finished_spans()))) + "\nnot json\n")
    loaded = tmp_path / "loaded.duckdb"
    sink = WarehouseSink(f"duckdb:///{loaded}", create=True)
    report = ingest_otlp([export], sink)
    assert (report.spans, report.unmapped, report.loaded) == (52, 1, 51)
    assert dict(report.skipped) == {"line not JSON": 1}
    assert ingest_otlp([export], sink).loaded == 0  # again: nothing doubled
    cols = "request_id, model, endpoint, status, input_tokens, output_tokens, finish_reason, prompt, response"
    a = duckdb.connect(str(logged)).execute(f"SELECT {cols}, latency_seconds FROM interactions ORDER BY 1").fetchall()
    b = duckdb.connect(str(loaded)).execute(f"SELECT {cols}, latency_seconds FROM interactions ORDER BY 1").fetchall()
    oi = [r for r in b if r[1] == "gpt-4o-mini"]
    assert len(oi) == 1 and oi[0][4:6] == (7, 3) and (oi[0][7], oi[0][8]) == ("hi", "hello")
    from_logged = {r[0]: r for r in a}
    for r in b:
        if r[1] == "gpt-4o-mini":
            continue
        want = from_logged[r[0]]
        assert r[1:9] == want[1:9]  # the masked prompt travelled in the span, masked
        assert r[9] == pytest.approx(want[9], abs=1e-6)


def _span(i: int, **attrs: Any) -> dict[str, Any]:
    kv = []
    for k, v in attrs.items():
        if isinstance(v, bool):
            kv.append({"key": k, "value": {"boolValue": v}})
        elif isinstance(v, int):
            kv.append({"key": k, "value": {"intValue": str(v)}})
        elif isinstance(v, list):
            kv.append({"key": k, "value": {"arrayValue": {"values": [{"stringValue": x} for x in v]}}})
        else:
            kv.append({"key": k, "value": {"stringValue": v}})
    start = 1_765_000_000_000_000_000 + i * 1_000_000_000
    return {
        "traceId": f"{i:032x}",
        "spanId": f"{i:016x}",
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 250_000_000 + i),
        "attributes": kv,
    }


def test_worker_processes_load_what_one_process_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otlp_workers, "_TASK_BYTES", 1500)  # a few documents a task: many tasks
    docs = []
    for d in range(8):
        spans = []
        for j in range(6):
            i = d * 6 + j
            if j == 0:
                spans.append(_span(i, **{"http.method": "GET"}))  # not an LLM call
            elif j == 1:
                spans.append(
                    _span(i, **{"llm.model_name": "m-oi", "llm.token_count.prompt": i, "input.value": "x@y.com"})
                )
            elif j == 2:
                spans.append(
                    {
                        "spanId": "no start",
                        "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "m"}}],
                    }
                )
            elif j == 3:
                spans.append(_span(i, **{"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": -1}))
            else:
                spans.append(
                    _span(
                        i if d != 5 else i - 30,  # document 5 repeats document 0's calls
                        **{
                            "gen_ai.request.model": "m",
                            "aimon.request_id": f"r{i if d != 5 else i - 30}",
                            "gen_ai.usage.input_tokens": 10 + i,
                            "gen_ai.response.finish_reasons": ["stop"],
                            "aimon.variant": 2,
                        },
                    )
                )
        docs.append(
            {
                "resourceSpans": [
                    {
                        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": f"svc{d}"}}]},
                        "scopeSpans": [{"spans": spans}],
                    }
                ]
            }
        )
    export = tmp_path / "t.jsonl"
    export.write_text(
        "\n".join(json.dumps(doc) for doc in docs[:4])
        + "\nnot json\n"
        + "\n".join(json.dumps(doc) for doc in docs[4:])
        + "\n"
    )
    got = []
    for workers in (1, 2):
        db = tmp_path / f"w{workers}.duckdb"
        report = ingest_otlp([export], WarehouseSink(f"duckdb:///{db}", create=True), workers=workers)
        with duckdb.connect(str(db)) as con:
            rows = con.execute("SELECT * EXCLUDE (prompt_hash) FROM interactions ORDER BY request_id").fetchall()
        got.append((report, rows))
    (one, rows1), (two, rows2) = got
    assert one == two and rows1 == rows2
    assert (one.spans, one.unmapped, one.valid, one.loaded) == (48, 8, 24, 22)  # 2 repeated calls not doubled
    assert dict(one.skipped) == {"line not JSON": 1, "malformed span (KeyError)": 8, "negative input_tokens": 8}
    oi = [r for r in rows1 if r[2] == "m-oi"]
    assert len(oi) == 8 and all("x@y.com" not in str(r) for r in oi)


def test_the_otlp_command_counts_what_it_could_not_map(tmp_path: Path) -> None:
    f = tmp_path / "t.json"
    f.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x", "attributes": []}]}]}]}))
    res = CliRunner().invoke(
        app, ["ingest", "otlp", str(f), "--url", f"duckdb:///{tmp_path / 'w.duckdb'}", "--create", "--format", "json"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert (doc["spans"], doc["unmapped"], doc["loaded"]) == (1, 1, 0)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_monitoring_run_is_one_trace_with_a_span_per_step(tmp_path: Path, duck_url: str, collector: str) -> None:
    import yaml

    from aimon.flows.monitor import monitor_window
    from aimon.tasks.registry import ANALYZERS
    from tests.conftest import DAY, PRICING

    cfg = tmp_path / "monitoring.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": duck_url, "interactions_table": "interactions"},
                "pricing": PRICING,
                "tracing": {"otlp_endpoint": collector, "service_name": "aimon-test"},
            }
        )
    )
    summary = monitor_window(window_start=DAY.isoformat(), config_path=str(cfg))
    spans = [s for r in Receiver.got for s in _spans(r["doc"])]
    names = {s["name"] for s in spans}
    assert {"monitor-window", "read", "contract", "publish", "push", "alert"} <= names
    assert {f"analyze {name}" for name in ANALYZERS} <= names
    assert len({s["traceId"] for s in spans}) == 1  # one trace per run
    root = next(s for s in spans if s["name"] == "monitor-window")
    assert all(s.get("parentSpanId") == root["spanId"] for s in spans if s is not root)
    assert _attrs(root)["aimon.run.status"] == summary.status
    drift = next(s for s in spans if s["name"] == "analyze drift")
    took = (int(drift["endTimeUnixNano"]) - int(drift["startTimeUnixNano"])) / 1e9
    assert int(root["startTimeUnixNano"]) <= int(drift["startTimeUnixNano"]) and took > 0
