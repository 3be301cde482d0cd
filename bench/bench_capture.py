"""The capture side's costs (docs/capture.md, "Costs"): what `log()` adds to the
request path, what AimonMiddleware adds to a request, how fast the sinks load, and how
fast `aimon ingest otlp` reads spans.

- log(): per-call wall time of 200,000 calls (p50 / p99), the flusher running;
- middleware: a trivial JSON endpoint called through the ASGI interface in-process
  with and without AimonMiddleware (the added time per request, p50 / p99, no network
  noise), then the same FastAPI app under uvicorn with and without it, side by side,
  loaded by wrk (Debian's package) at a fixed rate, interleaved rounds;
- sinks: rows/s into DuckDB (Arrow) and PostgreSQL (COPY), 10,000-row batches, the
  idempotency check included; JSONL;
- ingest: OTLP JSON spans/s into DuckDB.

    nice .venv/bin/python bench/bench_capture.py [--rows 1000000] [--pg URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from aimon.capture import InteractionLogger, JsonlSink, WarehouseSink
from aimon.capture.asgi import AimonMiddleware
from aimon.capture.otlp import ingest_otlp

T0 = dt.datetime(2026, 12, 6)


def pct(xs: list[float] | np.ndarray, q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def bench_log(work: Path, n: int = 200_000, journal: bool = False) -> tuple[float, float]:
    """log()'s wall time; `journal`: with a spool, so each row is also journaled."""
    spool = work / f"log-spool-{journal}.jsonl" if journal else None
    lg = InteractionLogger(JsonlSink(work / "log"), queue_size=n + 1, flush_interval=0.05, spool=spool)
    times = np.empty(n)
    clock = time.perf_counter_ns
    for i in range(n):
        t = clock()
        lg.log("gpt-4o", endpoint="chat", input_tokens=120, output_tokens=40, latency_seconds=0.8, prompt="hello")
        times[i] = clock() - t
    lg.close()
    return pct(times, 50) / 1e3, pct(times, 99) / 1e3


def rows(n: int, offset: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": T0 + dt.timedelta(milliseconds=offset + i),
            "request_id": f"r{offset + i}",
            "model": "gpt-4o",
            "endpoint": "chat",
            "status": "ok",
            "latency_seconds": 0.8,
            "input_tokens": 120,
            "output_tokens": 40,
            "prompt_hash": "9510a32c5419fbad946f7e1e92b8fc84",
        }
        for i in range(n)
    ]


def bench_logger(url: str, n: int) -> float:
    """Rows/s from the first log() to the last row in the warehouse, through the
    logger (check, mask, batch, sink) at the rate one thread can log."""
    t = time.perf_counter()
    lg = InteractionLogger(url, create_table=True, batch_size=10_000, queue_size=n + 1)
    for _ in range(n):
        lg.log("gpt-4o", endpoint="chat", input_tokens=120, output_tokens=40, latency_seconds=0.8, prompt="hello")
    lg.close(timeout=600)
    assert lg.stats.written == n, lg.stats
    return n / (time.perf_counter() - t)


def bench_sink(sink: Any, total: int, batch: int = 10_000, session: bool = False) -> float:
    data = [rows(batch, k * batch) for k in range(total // batch)]
    t = time.perf_counter()
    with sink.session() if session else contextlib.nullcontext():
        for b in data:
            sink.write(b)
    took = time.perf_counter() - t
    sink.close()
    return total / took


async def _asgi_times(app: Any, n: int) -> list[float]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat",
        "headers": [(b"content-type", b"application/json")],
        "query_string": b"",
    }
    body = json.dumps({"model": "gpt-4o"}).encode()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(msg: dict[str, Any]) -> None:
        pass

    out: list[float] = []
    for _ in range(n):
        t = time.perf_counter_ns()
        await app(dict(scope, state={}), receive, send)
        out.append(time.perf_counter_ns() - t)
    return out


async def trivial(scope: Any, receive: Any, send: Any) -> None:
    """A trivial JSON endpoint as a bare ASGI app (the framework's own cost left out)."""
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send(
        {"type": "http.response.body", "body": b'{"model":"gpt-4o","usage":{"prompt_tokens":3,"completion_tokens":2}}'}
    )


def bench_middleware(work: Path, n: int = 50_000) -> tuple[float, float, float, float]:
    lg = InteractionLogger(JsonlSink(work / "mw"), queue_size=n + 1)
    wrapped = AimonMiddleware(trivial, lg, paths=("/v1/",))
    bare_t: list[float] = []
    wrapped_t: list[float] = []
    for _ in range(5):  # interleaved rounds: the machine's drift hits both alike
        bare_t += asyncio.run(_asgi_times(trivial, n // 5))
        wrapped_t += asyncio.run(_asgi_times(wrapped, n // 5))
    lg.close()
    return pct(bare_t, 50) / 1e3, pct(bare_t, 99) / 1e3, pct(wrapped_t, 50) / 1e3, pct(wrapped_t, 99) / 1e3


UVICORN_APP = """
import sys
from fastapi import FastAPI
from aimon.capture import InteractionLogger, JsonlSink
from aimon.capture.asgi import AimonMiddleware
app = FastAPI()
@app.post("/v1/chat")
@app.post("/plain/chat")
async def chat():
    return {"model": "gpt-4o", "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
# /v1/ is logged; /plain/ is outside the middleware's paths (one prefix test, then the app)
app = AimonMiddleware(app, InteractionLogger(JsonlSink(sys.argv[2])), paths=("/v1/",))
import uvicorn
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"model":"gpt-4o"}'
wrk.headers["Content-Type"] = "application/json"
function delay() return %(delay)d end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status + summary.errors.timeout))
end
"""


def _wrk(url: str, script: Path, connections: int, seconds: float) -> tuple[float, float, float]:
    """One wrk run: (requests/s, p50 µs, p99 µs). wrk times each request from its write
    to the response's end, so the Lua delay() that paces the load is not in it."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    req, took, p50, p99, errors = (int(x) for x in out.split("RESULT")[1].split())
    if errors:
        raise RuntimeError(f"wrk: {errors} failed requests")
    return req / (took / 1e6), float(p50), float(p99)


def bench_uvicorn(work: Path, rate: float, seconds: float, rounds: int = 8) -> dict[str, Any]:
    """One FastAPI app under uvicorn with one endpoint on two paths: /v1/chat logged by
    AimonMiddleware, /plain/chat outside its paths (the same app without it, in the same
    process, so CPU placement and the interpreter's state are the same for both);
    loaded in turn by wrk at `rate` requests/s (connections each waiting 2 ms between
    requests), `rounds` interleaved rounds."""
    import shutil
    import socket

    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (make bench-parts installs the Debian package)")
    script = work / "app.py"
    script.write_text(UVICORN_APP)
    lua = work / "load.lua"
    lua.write_text(WRK_SCRIPT % {"delay": 2})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(script), str(port), str(work / "uv")])
    urls = {m: f"http://127.0.0.1:{port}/{p}/chat" for m, p in (("without", "plain"), ("with", "v1"))}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), 1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("uvicorn did not start") from None
                time.sleep(0.2)
        # Connections for the rate: each makes one request per (2 ms + its latency).
        got, _, _ = _wrk(urls["without"], lua, 4, 3)
        conns = max(1, round(4 * rate / got))
        res: dict[str, list[tuple[float, float, float]]] = {"without": [], "with": []}
        for url in urls.values():
            _wrk(url, lua, conns, 2)  # warm up
        for _ in range(rounds):
            for mode, url in urls.items():
                res[mode].append(_wrk(url, lua, conns, seconds))
    finally:
        proc.terminate()
        proc.wait(10)
    med: dict[str, Any] = {m: tuple(float(np.median([r[k] for r in rs])) for k in range(3)) for m, rs in res.items()}
    # Paired: each round's with-minus-without (the two ran back to back), the median of those.
    med["added"] = tuple(
        float(np.median([w[k] - o[k] for w, o in zip(res["with"], res["without"], strict=True)])) for k in (1, 2)
    )
    return {"connections": conns, "rounds": rounds, **med}


def otlp_file(path: Path, n: int) -> None:
    """`n` GenAI spans, an ExportTraceServiceRequest of 10,000 a line."""

    def span(i: int) -> dict[str, Any]:
        return {
            "traceId": f"{i:032x}",
            "spanId": f"{i:016x}",
            "name": "chat gpt-4o",
            "kind": 3,
            "startTimeUnixNano": str(1_765_000_000_000_000_000 + i * 1_000_000),
            "endTimeUnixNano": str(1_765_000_000_800_000_000 + i * 1_000_000),
            "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "120"}},
                {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "40"}},
            ],
        }

    with open(path, "w") as f:
        for k in range(0, n, 10_000):
            spans = [span(i) for i in range(k, min(n, k + 10_000))]
            doc = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": spans}]}]}
            f.write(json.dumps(doc) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows for the DuckDB sink")
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--rate", type=float, default=2000, help="requests/s of the uvicorn load")
    ap.add_argument("--seconds", type=float, default=8, help="seconds of each wrk round")
    ap.add_argument("--no-uvicorn", action="store_true", help="skip the side-by-side under uvicorn (needs wrk)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aimon-capture-bench-"))
    print("| what | figure |\n|---|---|")
    p50, p99 = bench_log(work)
    print(f"| log() on the request path | p50 {p50:.2f} µs, p99 {p99:.2f} µs |", flush=True)
    p50, p99 = bench_log(work, journal=True)
    print(
        f"| log() with a spool (journaled: a kill -9 loses nothing) | p50 {p50:.2f} µs, p99 {p99:.2f} µs |", flush=True
    )
    b50, b99, w50, w99 = bench_middleware(work)
    print(
        f"| middleware, in-process ASGI (trivial endpoint) | bare p50 {b50:.1f} µs p99 {b99:.1f} µs; "
        f"with p50 {w50:.1f} µs p99 {w99:.1f} µs; added p50 {w50 - b50:.1f} µs, p99 {w99 - b99:.1f} µs |",
        flush=True,
    )
    if not args.no_uvicorn:
        uv = bench_uvicorn(work, args.rate, args.seconds)
        (r0, b50, b99), (r1, w50, w99) = uv["without"], uv["with"]
        print(
            f"| uvicorn + FastAPI, wrk at {r0:,.0f} / {r1:,.0f} req/s ({uv['connections']} connections), "
            f"request latency | without p50 {b50:.0f} µs p99 {b99:.0f} µs; with p50 {w50:.0f} µs p99 {w99:.0f} µs; "
            f"added (median of {uv['rounds']} paired rounds) p50 {uv['added'][0]:.0f} µs, "
            f"p99 {uv['added'][1]:.0f} µs |",
            flush=True,
        )
    rate = bench_sink(WarehouseSink(f"duckdb:///{work / 'w.duckdb'}", create=True), args.rows)
    print(
        f"| DuckDB sink ({args.rows:,} rows, 10k batches, the logger's mode: the file held <= 1.5 s, "
        f"then free 0.3 s) | {rate:,.0f} rows/s |",
        flush=True,
    )
    rate = bench_sink(WarehouseSink(f"duckdb:///{work / 'w1.duckdb'}", create=True, hold_seconds=0), args.rows // 4)
    print(f"| DuckDB sink ({args.rows // 4:,} rows, 10k batches, the file opened per batch) | {rate:,.0f} rows/s |")
    rate = bench_sink(WarehouseSink(f"duckdb:///{work / 'w2.duckdb'}", create=True), args.rows, session=True)
    print(
        f"| DuckDB sink ({args.rows:,} rows, 10k batches, one session: a bulk load) | {rate:,.0f} rows/s |", flush=True
    )
    rate = bench_logger(f"duckdb:///{work / 'w3.duckdb'}", args.rows // 2)
    print(f"| InteractionLogger into DuckDB ({args.rows // 2:,} rows logged, end to end) | {rate:,.0f} rows/s |")
    import sqlalchemy as sa

    eng = sa.create_engine(args.pg)
    with eng.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS aimon_capture_bench")
    eng.dispose()
    rate = bench_sink(WarehouseSink(args.pg, "aimon_capture_bench", create=True), 200_000)
    print(f"| PostgreSQL sink (200,000 rows, COPY) | {rate:,.0f} rows/s |", flush=True)
    rate = bench_sink(JsonlSink(work / "jsonl"), 200_000)
    print(f"| JSONL sink (200,000 rows) | {rate:,.0f} rows/s |", flush=True)
    for n in (200_000, 1_000_000):
        otlp_file(work / "spans.jsonl", n)
        mb = (work / "spans.jsonl").stat().st_size / 1e6
        for workers in (1, None):
            sink = WarehouseSink(f"duckdb:///{work / f'spans-{n}-{workers}.duckdb'}", create=True)
            t = time.perf_counter()
            report = ingest_otlp([work / "spans.jsonl"], sink, workers=workers)
            took = time.perf_counter() - t
            sink.close()
            how = "one process" if workers == 1 else "worker processes (the default at >= 8 MB), their start included"
            print(
                f"| aimon ingest otlp ({report.spans:,} spans, {mb:,.0f} MB, into DuckDB; {how}) "
                f"| {report.spans / took:,.0f} spans/s |",
                flush=True,
            )
    with eng.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS aimon_capture_bench")
    eng.dispose()


if __name__ == "__main__":
    main()
