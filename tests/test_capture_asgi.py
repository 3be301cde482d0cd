"""AimonMiddleware and feedback_router on a real FastAPI app: one logged interaction
per request with the correlation id echoed, status codes and provider error bodies
mapped to the contract's error types, tokens from the usage object (streamed too), a
streamed answer that reaches the client before it ends (under uvicorn), handlers
enriching the record; feedback validated, idempotent per user, unmatched ids kept."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from aimon.capture import InteractionLogger
from aimon.capture.asgi import AimonMiddleware
from aimon.capture.feedback import FeedbackStore, feedback_router

STREAM_PAUSE = 0.5


def make_app(logger: InteractionLogger, store: FeedbackStore) -> Any:
    app = FastAPI()

    @app.post("/v1/chat")
    async def chat(request: Request) -> dict[str, Any]:
        body = await request.json()
        request.state.aimon.update(experiment="prompt-v2", variant="b", user_id="u1")
        return {
            "model": body["model"] + "-2024",
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 3}},
        }

    @app.post("/v1/stream")
    async def stream() -> StreamingResponse:
        async def gen() -> AsyncIterator[bytes]:
            yield b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
            await asyncio.sleep(STREAM_PAUSE)
            yield b'data: {"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
            yield b"data: [DONE]\n\n"

        return StreamingResponse(gen(), media_type="text/event-stream")

    @app.post("/v1/filtered")
    async def filtered() -> JSONResponse:
        return JSONResponse({"error": {"code": "content_filter", "message": "blocked"}}, status_code=400)

    @app.post("/v1/limited")
    async def limited() -> JSONResponse:
        return JSONResponse({"error": {"type": "requests", "message": "slow down"}}, status_code=429)

    @app.post("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("bug")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"ok": "yes"}

    app.include_router(feedback_router(store))
    return AimonMiddleware(app, logger, paths=("/v1/",))


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[InteractionLogger, FeedbackStore, Any, Path]]:
    db = tmp_path / "w.duckdb"
    logger = InteractionLogger(f"duckdb:///{db}", create_table=True, flush_interval=0.05)
    store = FeedbackStore(f"sqlite:///{tmp_path / 'fb.sqlite'}")
    yield logger, store, make_app(logger, store), db
    logger.close()
    store.close()


def rows(db: Path) -> dict[str, dict[str, Any]]:
    con = duckdb.connect(str(db))
    try:
        df = con.execute("SELECT * FROM interactions").df()
    finally:
        con.close()
    return {r["endpoint"]: r for r in df.to_dict("records")}


async def _calls(app: Any) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as c:
        return [
            await c.post("/v1/chat", json={"model": "gpt-4o"}, headers={"X-Request-ID": "req-1"}),
            await c.post("/v1/filtered", headers={"X-Model": "claude"}),
            await c.post("/v1/limited", json={"model": "gpt-4o"}),
            await c.post("/v1/boom", json={"model": "gpt-4o"}),
            await c.get("/health"),
        ]


def test_each_request_on_the_paths_is_one_interaction(parts: Any) -> None:
    logger, _store, app, db = parts
    chat, filtered, limited, boom, health = asyncio.run(_calls(app))
    assert chat.headers["x-request-id"] == "req-1" and float(chat.headers["x-process-time"]) >= 0
    assert filtered.headers["x-request-id"] and "x-request-id" not in health.headers  # /health is not logged
    assert (filtered.status_code, limited.status_code, boom.status_code) == (400, 429, 500)
    logger.flush()
    got = rows(db)
    assert set(got) == {"v1/chat", "v1/filtered", "v1/limited", "v1/boom"}
    c = got["v1/chat"]
    assert (c["request_id"], c["model"], c["status"]) == ("req-1", "gpt-4o", "ok")  # the request's model first
    assert (c["input_tokens"], c["output_tokens"], c["cached_input_tokens"]) == (11, 7, 3)
    assert (c["experiment"], c["variant"]) == ("prompt-v2", "b") and c["user_id"] == "u1"
    assert c["latency_seconds"] > 0
    assert (got["v1/filtered"]["status"], got["v1/filtered"]["model"]) == ("content_filter", "claude")
    assert got["v1/limited"]["status"] == "rate_limit_exceeded"
    assert got["v1/boom"]["status"] == "server_error"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_a_streamed_answer_is_not_buffered_and_its_latency_runs_to_the_last_byte(parts: Any) -> None:
    logger, _store, app, db = parts
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        t0 = time.perf_counter()
        with httpx.stream("POST", f"http://127.0.0.1:{port}/v1/stream", timeout=10) as r:
            chunks = r.iter_bytes()
            first = next(chunks)
            t_first = time.perf_counter() - t0
            rest = b"".join(chunks)
        t_all = time.perf_counter() - t0
    finally:
        server.should_exit = True
        thread.join(10)
    assert b"hi" in first and b"[DONE]" in rest
    assert t_first < STREAM_PAUSE < t_all  # the first event arrived before the pause ended
    logger.flush()
    s = rows(db)["v1/stream"]
    assert (s["model"], s["input_tokens"], s["output_tokens"]) == ("gpt-4o-mini", 3, 2)
    assert s["latency_seconds"] >= STREAM_PAUSE


async def _feedback(app: Any) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as c:
        return [
            await c.post("/feedback", json={"request_id": "req-1", "user_id": "u1", "rating": 2}),
            await c.post("/feedback", json={"request_id": "req-1", "user_id": "u1", "rating": 5, "helpful": True}),
            await c.post("/feedback", json={"request_id": "req-1", "user_id": "u2", "helpful": False}),
            await c.post("/feedback", json={"request_id": "no-such-request", "rating": 3, "comment": "mail x@y.com"}),
            await c.post("/feedback", json={"request_id": "req-1", "rating": 9}),
            await c.post("/feedback", json={"request_id": "req-1"}),
            await c.post("/feedback", json={"request_id": "req-1", "rating": 3, "stars": 3}),
        ]


def test_feedback_is_validated_and_one_row_per_user(parts: Any) -> None:
    _logger, store, app, _db = parts
    res = asyncio.run(_feedback(app))
    assert [r.status_code for r in res] == [201, 201, 201, 201, 422, 422, 422]
    assert res[4].json()["detail"][0]["loc"] == ["body", "rating"]
    assert "give a rating" in res[5].text and res[6].json()["detail"][0]["loc"] == ["body", "stars"]
    with store.engine.connect() as c:
        got = c.execute(
            sa.text("SELECT request_id, user_id, rating, helpful, comment FROM feedback ORDER BY 1, 2")
        ).all()
    assert [tuple(r) for r in got] == [
        ("no-such-request", None, 3, None, "mail <email>"),  # kept: the analyzer counts it unmatched
        ("req-1", "u1", 5, True, None),  # the second rating replaced the first
        ("req-1", "u2", None, False, None),
    ]


@pytest.mark.slow
def test_the_live_demo_serves_traffic_into_the_warehouse(tmp_path: Path) -> None:
    from aimon.capture.record import create_table_sql
    from aimon.cli.demo_live import run_live
    from tests.conftest import make_config

    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute(create_table_sql("interactions"))  # the contract table, empty
    con.close()
    cfg = make_config(url, warehouse={"url": url, "interactions_table": "interactions", "feedback_table": "feedback"})
    got = run_live(cfg, requests=60, seed=3)
    assert got["logged"] == 60 and 0 < got["answered"] <= 60 and got["rated"] > 0
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        n, errors, tokens = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'rate_limit_exceeded'), sum(input_tokens) "
            "FROM interactions"
        ).fetchone()  # type: ignore[misc]
        rated = con.execute("SELECT count(*) FROM feedback").fetchone()[0]  # type: ignore[index]
    finally:
        con.close()
    assert n == 60 and errors == 60 - got["answered"] and tokens > 0 and rated == got["rated"]
