"""`aimon demo --live`: the capture side end to end, after the seeded demo. (No
`from __future__ import annotations` here: FastAPI reads the handlers' annotations at run
time, and `Request` is imported inside `gateway`.)

Starts a small FastAPI app (a fake LLM gateway: /v1/chat/completions, some answers
streamed, some rate-limited) wrapped in AimonMiddleware, with the feedback router,
under uvicorn on 127.0.0.1; sends it traffic with httpx; posts feedback; flushes the
logger into the demo warehouse; and monitors the current hour (provisional: it has not
ended) so the live rows show up as figures. Needs the `capture` extra.
"""

import asyncio
import datetime as dt
import random
import socket
import threading
import time
from typing import Any

from aimon.capture import InteractionLogger
from aimon.capture.asgi import AimonMiddleware
from aimon.capture.feedback import FeedbackStore, feedback_router
from aimon.config import Config

MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet")


def gateway(logger: InteractionLogger, feedback: FeedbackStore, seed: int) -> Any:
    from fastapi import FastAPI, Request  # noqa: PLC0415  the capture extra
    from fastapi.responses import JSONResponse, StreamingResponse  # noqa: PLC0415

    rng = random.Random(seed)
    app = FastAPI(title="aimon live demo gateway")

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        model = body.get("model", "gpt-4o")
        request.state.aimon["user_id"] = body.get("user", "anonymous")
        await asyncio.sleep(rng.uniform(0.005, 0.03) * (2 if "sonnet" in model else 1))
        if rng.random() < 0.04:
            return JSONResponse({"error": {"code": "rate_limit_exceeded", "message": "slow down"}}, status_code=429)
        prompt = sum(len(m.get("content", "")) for m in body.get("messages", [])) // 4 + 20
        usage = {"prompt_tokens": prompt, "completion_tokens": rng.randint(20, 300)}
        if body.get("stream"):

            async def events() -> Any:
                yield b'data: {"choices":[{"delta":{"content":"Hello"}}]}\n\n'
                await asyncio.sleep(0.01)
                last = {"model": model, "choices": [], "usage": usage}
                yield f"data: {_json(last)}\n\n".encode()
                yield b"data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        return {"model": model, "choices": [{"message": {"content": "Hello"}, "finish_reason": "stop"}], "usage": usage}

    app.include_router(feedback_router(feedback))
    return AimonMiddleware(app, logger, paths=("/v1/",), endpoint=lambda scope: "chat")


def _json(doc: Any) -> str:
    import json  # noqa: PLC0415

    return json.dumps(doc, separators=(",", ":"))


async def traffic(base: str, requests: int, seed: int) -> tuple[int, int]:
    import httpx  # noqa: PLC0415

    rng = random.Random(seed + 1)
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            body = {
                "model": rng.choice(MODELS),
                "messages": [{"role": "user", "content": "summarise this ticket " * rng.randint(1, 30)}],
                "stream": rng.random() < 0.2,
                "user": f"u{rng.randint(1, 40)}",
            }
            async with sem:
                r = await c.post("/v1/chat/completions", json=body)
                if r.status_code == 200:
                    ids.append(r.headers["x-request-id"])

        await asyncio.gather(*(one(i) for i in range(requests)))
        rated = 0
        for rid in rng.sample(ids, min(len(ids), requests // 5)):
            r = await c.post(
                "/feedback", json={"request_id": rid, "rating": rng.randint(2, 5), "helpful": rng.random() < 0.8}
            )
            rated += r.status_code == 201
    return len(ids), rated


def run_live(cfg: Config, *, requests: int = 300, seed: int = 7) -> dict[str, Any]:
    """Serve the gateway, send it `requests` calls and some feedback; returns counts.
    The rows land in cfg.warehouse's interactions and feedback tables."""
    import uvicorn  # noqa: PLC0415

    logger = InteractionLogger(
        cfg.warehouse.url, table=cfg.warehouse.interactions_table, flush_interval=0.2, store_text="masked"
    )
    feedback = FeedbackStore(cfg.warehouse.url, cfg.warehouse.feedback_table or "feedback")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(
            gateway(logger, feedback, seed), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, name="aimon-live-demo", daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        while not server.started:
            if time.monotonic() - started > 20 or not thread.is_alive():
                raise RuntimeError("the live demo's server did not start")
            time.sleep(0.05)
        ok, rated = asyncio.run(traffic(f"http://127.0.0.1:{port}", requests, seed))
    finally:
        server.should_exit = True
        thread.join(10)
        logger.close()
        feedback.close()
    return {
        "port": port,
        "requests": requests,
        "answered": ok,
        "rated": rated,
        "logged": logger.stats.written,
        "rejected": sum(logger.stats.rejected.values()),
        "hour": dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None),
    }
