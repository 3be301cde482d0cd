"""The deployments against a real local Prefect server: `prefect server start` on a free
loopback port with a temporary PREFECT_HOME, `prefect work-pool create`, `prefect
--no-prompt deploy --all` from the checkout, `prefect deployment run
backfill/aimon-backfill --param ...` and `prefect worker start --run-once`, which runs
a backfill of three daily windows on a seeded DuckDB warehouse."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import DAY, PRICING, write_duckdb

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POOL = "aimon-process"  # the pool prefect.yaml names


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> dict | list:
    with urllib.request.urlopen(url, timeout=10) as r:  # loopback only
        return json.loads(r.read())


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[dict[str, str]]:
    home = tmp_path / "prefect-home"
    home.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_CLI_PROMPT="false",
        PREFECT_LOGGING_LEVEL="INFO",
        AIMON_HOME=str(tmp_path / "aimon-home"),
    )
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                _get(f"{env['PREFECT_API_URL']}/health")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"prefect server did not start: {(tmp_path / 'server.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def prefect(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    r = subprocess.run(
        [str(BIN / "prefect"), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    assert r.returncode == 0, f"prefect {' '.join(args)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout + r.stderr


def test_backfill_deployment_runs_three_windows_on_a_worker(
    tmp_path: Path, frame: pd.DataFrame, prefect_server: dict[str, str]
) -> None:
    env = prefect_server
    db = tmp_path / "warehouse.duckdb"
    write_duckdb(db, frame)  # DAY-2 .. DAY+1 (four days of rows)
    config = tmp_path / "monitoring.yaml"
    config.write_text(yaml.safe_dump({"warehouse": {"url": f"duckdb:///{db}"}, "pricing": PRICING}))
    before = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout

    prefect(env, "work-pool", "create", POOL, "--type", "process")
    out = prefect(env, "--no-prompt", "deploy", "--all")
    for name in ("aimon-daily", "aimon-hourly", "aimon-backfill"):
        assert name in out, out
    first, last = DAY - dt.timedelta(days=2), DAY
    out = prefect(
        env,
        "deployment",
        "run",
        "backfill/aimon-backfill",
        "--param",
        f"start={first}",
        "--param",
        f"end={last}",
        "--param",
        f"config_path={config}",
        "--param",
        "concurrency=2",
    )
    run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", out)
    assert run_id, out
    prefect(env, "worker", "start", "--pool", POOL, "--run-once", timeout=600)

    run = _get(f"{env['PREFECT_API_URL']}/flow_runs/{run_id.group(1)}")
    assert isinstance(run, dict)
    assert run["state"]["type"] == "COMPLETED", run["state"]

    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        starts = con.sql("SELECT DISTINCT window_start FROM monitoring_metrics ORDER BY 1").fetchall()
        runs = con.sql("SELECT window_start, status FROM monitoring_runs ORDER BY 1").fetchall()
        dupes = con.sql(
            "SELECT count(*) FROM (SELECT metric, labels, window_start FROM monitoring_metrics "
            "GROUP BY ALL HAVING count(*) > 1)"
        ).fetchall()
    finally:
        con.close()
    want = [dt.datetime.combine(first + dt.timedelta(days=i), dt.time()) for i in range(3)]
    assert [s for (s,) in starts] == want
    assert runs == [(w, "success") for w in want]
    assert dupes == [(0,)]
    # Deploying from the checkout wrote nothing into it.
    after = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    assert after == before
