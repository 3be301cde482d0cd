"""How the `aimon` command fails, in a fresh process as a user runs it: one
`run failed: what failed: what to do` line and the documented exit status, no traceback
unless --debug; usage errors before Prefect starts; working from any directory."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from aimon import __version__
from aimon.cli import app
from aimon.tasks.plan import ANALYZER_ORDER
from tests.conftest import DAY, PRICING, write_duckdb

runner = CliRunner()
SECRET = "s3cr3t-pw"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a new user: no AIMON_HOME, no Prefect home or server of the suite."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIMON_", "PREFECT_"))}
    return {**env, "COLUMNS": "200", **extra}


def aimon(*args: str, cwd: Path, timeout: float = 240, **env: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "aimon.cli", *args]
    return subprocess.run(cmd, cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=timeout)


def output(res: subprocess.CompletedProcess[str]) -> str:
    return res.stdout + res.stderr


def assert_one_failure_line(res: subprocess.CompletedProcess[str], code: int) -> str:
    """Exactly one `run failed:` line, the last one on stderr; no traceback; the exit status."""
    out = output(res)
    lines = [ln for ln in out.splitlines() if ln.startswith("run failed:")]
    assert len(lines) == 1, out[-4000:]
    assert res.stderr.strip().splitlines()[-1] == lines[0]
    assert "Traceback" not in out, out[-4000:]
    assert res.returncode == code, out[-4000:]
    return lines[0]


def write_config(path: Path, url: str, **sections: object) -> Path:
    data = {"warehouse": {"url": url, "interactions_table": "interactions"}, "pricing": PRICING, **sections}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_version(tmp_path: Path) -> None:
    res = aimon("--version", cwd=tmp_path, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == f"aimon {__version__}"


def test_usage_errors_are_one_line_and_come_before_prefect(tmp_path: Path) -> None:
    """A typo'd option, a missing one, a bad --window-start: exit 2 within seconds (no Prefect)."""
    cfg = write_config(tmp_path / "cfg.yaml", f"duckdb:///{tmp_path / 'wh.duckdb'}")
    cases = [
        (("run", "--dat", "2026-11-10"), "No such option: --dat"),
        (("backfill", "--end", "2026-11-10"), "Missing option '--start'"),
        (("run", "--config", str(cfg), "--window-start", "yesterday-ish"), "yesterday-ish"),
        (("--bogus",), "No such option: --bogus"),
    ]
    for args, says in cases:
        started = time.monotonic()
        res = aimon(*args, cwd=tmp_path, timeout=60)
        line = assert_one_failure_line(res, 2)
        assert says in line
        assert time.monotonic() - started < 8, f"{args}: {time.monotonic() - started:.1f}s, Prefect started?"
        assert not (tmp_path / ".aimon").exists()  # nothing created for a usage error


def _missing_table(tmp_path: Path, frame: pd.DataFrame) -> tuple[Path, int, str]:
    url = write_duckdb(tmp_path / "wh.duckdb", frame.head(50))
    cfg = write_config(tmp_path / "cfg.yaml", url)
    cfg.write_text(cfg.read_text().replace("interactions_table: interactions", "interactions_table: events"))
    return cfg, 2, "table 'events' not found"


def _unreachable_store(tmp_path: Path, frame: pd.DataFrame) -> tuple[Path, int, str]:
    url = write_duckdb(tmp_path / "wh.duckdb", frame.head(50))
    store = {"url": f"postgresql+psycopg://aimon:{SECRET}@127.0.0.1:9/test"}  # port 9: discard, nothing listens
    return write_config(tmp_path / "cfg.yaml", url, store=store), 1, "127.0.0.1:9"


def _latency_as_text(tmp_path: Path, frame: pd.DataFrame) -> tuple[Path, int, str]:
    df = frame.head(200).copy()
    df["latency_seconds"] = df["latency_seconds"].map(lambda v: f"{v:.3f}s")
    url = write_duckdb(tmp_path / "wh.duckdb", df)
    return write_config(tmp_path / "cfg.yaml", url), 2, "latency_seconds"


@pytest.mark.slow
@pytest.mark.parametrize("fault", [_missing_table, _unreachable_store, _latency_as_text])
def test_a_failing_run_prints_one_line_and_no_traceback(tmp_path: Path, frame: pd.DataFrame, fault) -> None:
    """Missing table, unreachable store (password masked), a column of the wrong type."""
    cfg, code, says = fault(tmp_path, frame)
    res = aimon("run", "--config", str(cfg), "--date", DAY.isoformat(), cwd=tmp_path)
    line = assert_one_failure_line(res, code)
    assert says in line
    assert SECRET not in output(res)


@pytest.mark.slow
def test_debug_prints_the_traceback(tmp_path: Path, frame: pd.DataFrame) -> None:
    cfg, code, _ = _missing_table(tmp_path, frame)
    res = aimon("--debug", "run", "--config", str(cfg), "--date", DAY.isoformat(), cwd=tmp_path)
    out = output(res)
    assert res.returncode == code
    assert "Traceback" in out and "ContractError" in out
    assert [ln for ln in out.splitlines() if ln.startswith("run failed:")] == [res.stderr.strip().splitlines()[-1]]


@pytest.mark.usefixtures("prefect_harness")
def test_the_trace_stays_in_the_flow_run_log(tmp_path: Path, frame: pd.DataFrame) -> None:
    """What the terminal leaves out is in Prefect: the flow run's state and its log."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import FlowRunSort

    cfg, _, _ = _missing_table(tmp_path, frame)
    res = runner.invoke(app, ["run", "--config", str(cfg), "--date", DAY.isoformat()])
    assert res.exit_code == 2
    for handler in logging.getLogger("prefect.flow_runs").handlers:
        handler.flush()  # the API log handler sends in batches
    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)
        assert run.state is not None and run.state.is_failed()
        assert "table 'events' not found" in (run.state.message or "")
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
    assert any("Traceback" in log.message and "ContractError" in log.message for log in logs)


def test_an_unexpected_error_is_one_line_naming_its_type(tmp_path: Path) -> None:
    """Not an aimon error (here the store file's folder is a file: OSError or a driver's
    error): one `run failed:` line with its type, exit 1."""
    (tmp_path / "blocker").write_text("")
    cfg = write_config(
        tmp_path / "cfg.yaml", f"duckdb:///{tmp_path / 'wh.duckdb'}", store={"url": "sqlite:///blocker/x/store.db"}
    )
    duckdb.connect(str(tmp_path / "wh.duckdb")).close()
    res = aimon("alerts", "list", "--config", str(cfg), cwd=tmp_path, timeout=120)
    line = assert_one_failure_line(res, 1)
    assert "Error" in line


def test_init_then_config_check(tmp_path: Path, frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    """`aimon init DIR` writes the starter config where `aimon` looks for it, refuses to
    overwrite it, and `aimon config check` run there finds it."""
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["init", "proj"])
    assert res.exit_code == 0, res.output
    written = tmp_path / "proj" / "configs" / "monitoring.yaml"
    assert written.read_text() == (Path(__file__).parent.parent / "configs" / "monitoring.yaml").read_text()
    assert "warehouse.url" in res.output and "alerts.channels" in res.output
    again = runner.invoke(app, ["init", "proj"])
    assert again.exit_code == 2 and "exists" in again.output and "--force" in again.output
    assert runner.invoke(app, ["init", "proj", "--force"]).exit_code == 0

    monkeypatch.chdir(tmp_path / "proj")
    monkeypatch.delenv("AIMON_CONFIG", raising=False)
    monkeypatch.setenv("AIMON_WAREHOUSE_URL", write_duckdb(tmp_path / "wh.duckdb", frame))
    res = runner.invoke(app, ["config", "check"])
    assert f"configs{os.sep}monitoring.yaml: valid" in res.output, res.output
    assert "analyzers:" in res.output


def check_lines(output: str) -> dict[str, str]:
    """`config check`'s analyzer lines: name -> 'run ...' / 'skipped ...'."""
    out = {}
    for ln in output.splitlines():
        parts = ln.split(None, 2)
        if len(parts) == 3 and parts[0] in ("run", "skipped", "fails") and parts[1] in ANALYZER_ORDER:
            out[parts[1]] = f"{parts[0]} {parts[2]}"
    return out


def test_config_check_says_which_analyzers_run_and_why_others_are_skipped(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    con.execute(
        "CREATE TABLE interactions AS SELECT TIMESTAMP '2026-11-10 10:00' AS timestamp, 'm1' AS model, "
        "'ok' AS status, 1.5 AS latency_seconds"
    )
    con.close()
    rules = [
        {"name": "SlowP95", "metric": "llm_latency_seconds", "op": ">", "threshold": 2},
        {"name": "AccuracyDrop", "metric": "model_accuracy", "op": "<", "threshold": 0.8},
        {"name": "Overspend", "metric": "llm_budget_used_ratio", "op": ">", "threshold": 1},
        {"name": "LiftTypo", "metric": "ab_lyft", "op": "<", "threshold": 0},
    ]
    cfg = write_config(
        tmp_path / "cfg.yaml",
        f"duckdb:///{tmp_path / 'wh.duckdb'}",
        store={"url": f"duckdb:///{tmp_path / 'store.duckdb'}"},
        drift={"builtins": False},
        alerts={"rules": rules},
    )
    res = runner.invoke(app, ["config", "check", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    got = check_lines(res.output)
    assert got["operational"] == "run requests and errors, latency quantiles"
    assert got["cost"] == "skipped no token columns; neither cost_usd nor token columns"
    assert got["drift"].startswith("skipped drift.builtins is off and no drift.features")
    assert got["quality"].startswith("skipped no label or prediction column;")
    assert "no warehouse.feedback_table configured" in got["quality"]
    assert got["abtest"] == "skipped no experiments configured"
    assert "3 alert rules can never be judged" in res.output
    assert "AccuracyDrop (model_accuracy): quality computes no classification: no label or prediction column" in (
        res.output
    )
    assert "Overspend (llm_budget_used_ratio): cost computes no budgets" in res.output
    assert "LiftTypo (ab_lyft)" in res.output
    assert "SlowP95" not in res.output


def test_config_check_names_a_drift_feature_that_will_fail_and_unpriced_models(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    con.execute(
        "CREATE TABLE interactions AS SELECT now()::TIMESTAMP AS timestamp, 'mystery-model' AS model, "
        "'ok' AS status, 10 AS input_tokens, 'x' AS label, 'x' AS prediction"
    )
    con.close()
    cfg = write_config(
        tmp_path / "cfg.yaml",
        f"duckdb:///{tmp_path / 'wh.duckdb'}",
        store={"url": f"duckdb:///{tmp_path / 'store.duckdb'}"},
        drift={"features": [{"name": "user_tier", "type": "categorical"}]},
    )
    res = runner.invoke(app, ["config", "check", "--config", str(cfg)])
    assert res.exit_code == 1, res.output
    got = check_lines(res.output)
    assert got["drift"].startswith("fails drift.features[0] names column 'user_tier'")
    assert got["quality"].startswith("run classification")
    assert "no price for mystery-model" in res.output


@pytest.mark.slow
def test_run_and_demo_from_an_empty_directory_use_the_packaged_config(tmp_path: Path) -> None:
    """No .aimon/, no configs/, no AIMON_HOME: the packaged config, state under ./.aimon,
    and the ephemeral Prefect server starts (it used to time out after 3 minutes)."""
    started = time.monotonic()
    res = aimon("demo", "--days", "2", "--rows-per-day", "400", cwd=tmp_path, timeout=170)
    assert res.returncode == 0, output(res)[-4000:]
    assert time.monotonic() - started < 170
    assert (tmp_path / ".aimon" / "prefect").is_dir() and (tmp_path / ".aimon" / "warehouse.duckdb").is_file()
    assert "aimon/configs/monitoring.yaml" in res.stdout  # the demo's "where to look next" names the config
    res = aimon("run", "--date", (pd.Timestamp.now("UTC") - pd.Timedelta(days=1)).date().isoformat(), cwd=tmp_path)
    assert res.returncode in (0, 1), output(res)[-4000:]  # 1: degraded (a demo incident), never a crash
    assert "Traceback" not in output(res)
    assert "figures stored" in res.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_backfill_stops_on_a_signal_after_the_window_in_progress(
    tmp_path: Path, sqlite_url: str, sig: signal.Signals, code: int
) -> None:
    """Ctrl-C (or SIGTERM) during a backfill: the window in progress commits, no other
    starts, the table marks the rest interrupted, no claim is left, exit 128 + signal."""
    cfg = write_config(tmp_path / "cfg.yaml", sqlite_url)
    first, last = DAY - dt.timedelta(days=2), DAY + dt.timedelta(days=1)
    cmd = [sys.executable, "-m", "aimon.cli", "backfill", "--config", str(cfg), "--concurrency", "1"]
    cmd += ["--start", first.isoformat(), "--end", last.isoformat()]
    env = clean_env(AIMON_HOME=str(tmp_path / ".aimon"))
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    engine = sa.create_engine(sqlite_url)
    try:
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(sa.exc.OperationalError), engine.connect() as conn:  # tables not made yet
                if conn.execute(sa.text("SELECT count(*) FROM monitoring_runs")).scalar():
                    break
            time.sleep(0.2)
        assert proc.poll() is None, "the backfill ended before its first window started"
        os.kill(proc.pid, sig)
        with engine.connect() as conn:  # the windows begun by the time the signal landed
            begun = conn.execute(sa.text("SELECT count(*) FROM monitoring_runs")).scalar()
        out, err = proc.communicate(timeout=120)
        with engine.connect() as conn:
            runs = conn.execute(sa.text("SELECT status, finished_at FROM monitoring_runs")).all()
            claims = conn.execute(sa.text("SELECT count(*) FROM monitoring_runs_claims")).scalar()
    finally:
        if proc.poll() is None:
            proc.kill()
        engine.dispose()
    assert proc.returncode == code, out[-3000:] + err[-3000:]
    assert claims == 0
    assert runs and all(r.status != "running" for r in runs)
    assert len(runs) < 4  # at least one window never started
    assert len(runs) == begun  # none started after the signal: the one in progress finished, then it stopped
    assert all(r.finished_at is not None for r in runs)
    assert "interrupted" in out and "not started" in out
    assert err.strip().splitlines()[-1].startswith(f"run failed: backfill interrupted by {sig.name}")
    assert "Traceback" not in out + err


def test_read_commands_name_a_missing_store_and_create_none(tmp_path: Path) -> None:
    """From a directory where the config's relative store path has no file (the installed
    aimon run elsewhere): `alerts list`, `alerts history` and `annotate list` fail with
    one line naming the store's path, instead of creating an empty store and answering
    "no alerts firing"."""
    cfg = write_config(tmp_path / "c.yaml", "duckdb:///.aimon/warehouse.duckdb")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (("alerts", "list"), ("alerts", "history"), ("annotate", "list")):
        res = aimon(*args, "--config", str(cfg), cwd=elsewhere)
        line = assert_one_failure_line(res, res.returncode)
        assert res.returncode != 0
        assert f"{elsewhere / '.aimon' / 'warehouse.duckdb'}" in line and "does not exist yet" in line, line
    assert not (elsewhere / ".aimon" / "warehouse.duckdb").exists()
