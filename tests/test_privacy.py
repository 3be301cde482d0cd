"""No prompt, response, reference, user id, feedback comment or secret ever leaves the
warehouse: not in a notification, a Pushgateway series, a stored figure or alert, the
run's artifact, a log line or the terminal. Checked on a live window of the demo's data
(its incidents page) with canary values in every such column, a real Pushgateway and a
local Slack server whose webhook URL is the secret."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
import yaml
from prefect.client.orchestration import get_client
from prefect.logging.handlers import APILogHandler

from aimon.config import load_config
from aimon.demo import seed_duckdb
from aimon.engines import get_engine
from aimon.flows.monitor import monitor_window
from aimon.store.schema import schema
from aimon.tasks.orchestration.artifact import run_markdown
from tests.promstack import Server
from tests.servers import SlackServer

REPO = Path(__file__).resolve().parent.parent
CANARY = "CANARY7Q"  # in every private column's values; must appear nowhere else
SECRET = "webhooksecret42"  # the last part of the Slack server's webhook URL


def private_demo(tmp_path: Path, end: dt.date) -> Path:
    """The demo's data with a canary in every private column (the cost optimiser reads
    the prompts: hashes and lengths in SQL, never the text)."""
    db = tmp_path / "wh.duckdb"
    seed_duckdb(db, days=5, rows_per_day=3000, seed=7, end=end)
    with duckdb.connect(str(db)) as con:
        con.execute(
            f"""UPDATE interactions SET
                prompt = 'write about {CANARY} ' || prompt,
                user_id = '{CANARY}-' || coalesce(user_id, 'anon'),
                response = CASE WHEN response IS NULL THEN NULL ELSE '{CANARY} ' || response END,
                reference = CASE WHEN reference IS NULL THEN NULL ELSE '{CANARY} ' || reference END"""
        )
        con.execute(f"UPDATE feedback SET comment = 'I am {CANARY}, call me'")
    return db


def config(tmp_path: Path, db: Path, gateway: str) -> str:
    data = yaml.safe_load((REPO / "configs" / "monitoring.yaml").read_text())
    data["warehouse"] = {**data["warehouse"], "url": f"duckdb:///{db}"}
    data["pushgateway"] = {"url": gateway, "job": "aimon"}
    data["alerts"]["channels"] = {"team-slack": {"type": "slack", "webhook_url_env": "AIMON_TEST_SLACK_WEBHOOK"}}
    data["alerts"]["routes"] = [{"name": "default", "channels": ["team-slack"]}]
    path = tmp_path / "monitoring.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def store_text(cfg_path: str) -> str:
    """Every row of every table aimon owns, as text."""
    cfg = load_config(cfg_path)
    tables = schema(cfg)
    out = []
    with get_engine(cfg.store_url).connect() as conn:
        for t in (tables.metrics, tables.runs, tables.alert_state, tables.alert_events, tables.outbox):
            out += [str(tuple(r)) for r in conn.execute(sa.select(t))]
    return "\n".join(out)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_private_columns_and_secrets_never_leave_the_warehouse(
    tmp_path: Path,
    slack: SlackServer,
    pushgateway: Server,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert slack.webhook_url.endswith(SECRET)
    end = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)  # the live window
    db = private_demo(tmp_path, end)
    cfg = config(tmp_path, db, pushgateway.url)
    caplog.set_level(logging.DEBUG)
    for offset in range(4, 0, -1):  # history for the baselines: recorded, not sent
        monitor_window(window_start=(end - dt.timedelta(days=offset)).isoformat(), config_path=cfg)
    summary = monitor_window(window_start=end.isoformat(), config_path=cfg)
    assert summary.live and summary.status == "success", summary.notes

    # The run really saw the private columns and paged.
    assert summary.value("generation_rouge", model="__all__", variant="rouge1") is not None
    assert any(n.startswith("notification sent: default -> team-slack") for n in summary.notes)
    assert slack.requests, "the live window's incidents should page"
    with get_engine(load_config(cfg).warehouse.url).connect() as conn:  # the run's own engine (one per file)
        assert conn.execute(sa.text(f"SELECT count(*) FROM interactions WHERE prompt LIKE '%{CANARY}%'")).scalar()

    APILogHandler().flush()  # the flow runs' logs reach Prefect's API in the background
    with get_client(sync_client=True) as client:
        prefect_logs = "\n".join(log.message for log in client.read_logs())
    terminal = capfd.readouterr()
    places = {
        "a notification": "\n".join(str(r.body) for r in slack.requests),
        "the Pushgateway": pushgateway.get("/metrics"),
        "the store": store_text(cfg),
        "the run artifact": run_markdown(summary),
        "the run summary": "\n".join(summary.notes) + str(summary.records),
        "a log record": "\n".join(r.getMessage() for r in caplog.records),
        "Prefect's flow-run logs": prefect_logs,
        "the terminal": terminal.out + terminal.err,
    }
    # Each was really read. (Prefect's API log holds what its loggers emit at the level
    # aimon sets, warnings and up: possibly nothing on a clean run.)
    assert places["the Pushgateway"] and places["the store"] and places["a log record"]
    for where, text in places.items():
        assert CANARY not in text, f"a private value reached {where}"
        assert SECRET not in text, f"the webhook secret reached {where}"
    # Nor does any user id become a label: the only labels are bounded ones.
    assert "user_id" not in places["the Pushgateway"] and "user_id" not in places["the store"]
