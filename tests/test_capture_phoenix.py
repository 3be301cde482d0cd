"""Against a real Phoenix server (`phoenix serve` from .venv-phoenix, `make phoenix`):
the logger's GenAI spans arrive over OTLP/HTTP and read back from Phoenix's REST API
with their attributes; a monitoring run's spans form one trace there; and `aimon ingest
phoenix` loads the project's LLM spans as the interactions that were logged."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from typer.testing import CliRunner

from aimon.capture import InteractionLogger
from aimon.capture.otel import GenAISpans
from aimon.cli import app

REPO = Path(__file__).resolve().parent.parent
PHOENIX = REPO / ".venv-phoenix" / "bin" / "phoenix"
T0 = dt.datetime(2026, 12, 6, 10, 0, 0)

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not PHOENIX.exists():
        pytest.fail(f"{PHOENIX} is missing: `make phoenix` installs it (make test does)")
    port, grpc = free_port(), free_port()
    work = tmp_path_factory.mktemp("phoenix")
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(work),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc),  # its gRPC receiver; nothing is sent to it
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    log = open(work / "phoenix.log", "w")  # noqa: SIM115  closed below
    proc = subprocess.Popen([str(PHOENIX), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"phoenix serve did not start: {(work / 'phoenix.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def spans_of(url: str, project: str, want: int, timeout: float = 30) -> list[dict[str, Any]]:
    """The project's spans once `want` of them arrived (Phoenix inserts in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/v1/projects/{project}/spans?limit=1000", timeout=10) as r:
                got = json.load(r)["data"]
        except OSError:
            got = []
        if len(got) >= want or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def test_logged_calls_read_back_from_phoenix_and_ingest_as_the_same_rows(phoenix: str, tmp_path: Path) -> None:
    spans = GenAISpans(endpoint=phoenix, service_name="chat-app")
    logged = tmp_path / "logged.duckdb"
    with InteractionLogger(f"duckdb:///{logged}", create_table=True, spans=spans, flush_interval=0.02) as lg:
        for i in range(20):
            lg.log(
                "gpt-4o" if i % 2 else "claude-3-5-sonnet",
                endpoint="chat",
                request_id=f"r{i}",
                status="ok" if i % 5 else "rate_limit_exceeded",
                input_tokens=100 + i,
                output_tokens=10 + i,
                latency_seconds=0.5,
                prompt=f"question {i} for bob@example.com",
                response=f"answer {i}",
                finish_reason="stop",
                timestamp=T0 + dt.timedelta(seconds=i),
            )
    spans.shutdown()
    got = spans_of(phoenix, "default", 20)
    assert len(got) == 20
    by_id = {s["attributes"]["gen_ai.response.id"]: s for s in got}
    s3 = by_id["r3"]
    assert s3["name"] == "chat gpt-4o" and s3["span_kind"] == "LLM"
    a = s3["attributes"]
    assert (a["gen_ai.request.model"], a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (
        "gpt-4o",
        103,
        13,
    )
    assert a["gen_ai.provider.name"] == "openai" and "<email>" in a["gen_ai.input.messages"]
    assert "bob@example.com" not in json.dumps(got)  # masked before it left the process
    assert by_id["r5"]["status_code"] == "ERROR" and by_id["r5"]["attributes"]["error.type"] == "rate_limit_exceeded"

    loaded = tmp_path / "loaded.duckdb"
    runner = CliRunner()
    args = ["ingest", "phoenix", "--phoenix-url", phoenix, "--project", "default", "--url", f"duckdb:///{loaded}"]
    res = runner.invoke(app, [*args, "--create", "--format", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["loaded"] == 20
    assert json.loads(runner.invoke(app, [*args, "--format", "json"]).stdout)["loaded"] == 0  # idempotent
    cols = "request_id, model, status, input_tokens, output_tokens, finish_reason, prompt, response, latency_seconds"
    a_rows = duckdb.connect(str(logged)).execute(f"SELECT {cols} FROM interactions ORDER BY 1").fetchall()
    b_rows = duckdb.connect(str(loaded)).execute(f"SELECT {cols} FROM interactions ORDER BY 1").fetchall()
    assert [r[:8] for r in a_rows] == [r[:8] for r in b_rows]
    assert all(abs(x[8] - y[8]) < 1e-3 for x, y in zip(a_rows, b_rows, strict=True))


@pytest.mark.usefixtures("prefect_harness")
def test_a_monitoring_run_is_one_trace_in_phoenix(phoenix: str, tmp_path: Path, duck_url: str) -> None:
    from aimon.flows.monitor import monitor_window
    from tests.conftest import DAY, PRICING

    cfg = tmp_path / "monitoring.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": duck_url, "interactions_table": "interactions"},
                "pricing": PRICING,
                "tracing": {"otlp_endpoint": phoenix, "service_name": "aimon-run"},
            }
        )
    )
    summary = monitor_window(window_start=DAY.isoformat(), config_path=str(cfg))
    runs = [s for s in spans_of(phoenix, "default", 1000, timeout=10) if s["name"] == "monitor-window"]
    assert runs, "no monitor-window span reached Phoenix"
    root = runs[-1]
    trace_id = root["context"]["trace_id"]
    deadline = time.monotonic() + 30
    while True:
        mine = [s for s in spans_of(phoenix, "default", 1000, timeout=5) if s["context"]["trace_id"] == trace_id]
        if len(mine) >= 10 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    names = {s["name"] for s in mine}
    assert {"read", "contract", "publish", "push", "alert", "analyze operational", "analyze drift"} <= names
    assert root["attributes"]["aimon.run.status"] == summary.status
    assert all(
        s["parent_id"] == root["context"]["span_id"] for s in mine if s is not root and s["name"] != "monitor-window"
    )
