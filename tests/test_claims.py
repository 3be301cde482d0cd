"""Window claims under real concurrency (threads on DuckDB, SQLite and PostgreSQL;
processes on PostgreSQL and SQLite), stale-claim takeover, a killed process's claim,
redo modes, transient-error classification on real driver errors, and DST windows."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from aimon.errors import ContractError, WindowClaimed, WindowDone
from aimon.store.metrics import Store, utcnow
from aimon.store.runs import needs_run
from aimon.tasks.orchestration.retries import transient_reason
from aimon.windows import daily_window, windows_between
from tests import claim_child
from tests.conftest import DAY, PG_URL, make_config

REPO = Path(__file__).resolve().parent.parent
WINDOW = daily_window(DAY)


@pytest.fixture(params=["duckdb", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'store.duckdb'}"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    schema = request.getfixturevalue("pg_schema")
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


def race(n: int, fn) -> tuple[Counter[str], list[str]]:
    """Run fn(i) in n threads released together; count wins and losses."""
    barrier = threading.Barrier(n)
    outcomes: Counter[str] = Counter()
    errors: list[str] = []
    lock = threading.Lock()

    def go(i: int) -> None:
        barrier.wait()
        try:
            fn(i)
            result = "won"
        except WindowClaimed:
            result = "claimed"
        except Exception as err:  # anything else is a defect of the claim
            result = "error"
            errors.append(repr(err))
        with lock:
            outcomes[result] += 1

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes, errors


def test_concurrent_claims_of_one_window_let_exactly_one_run_start(store_url: str) -> None:
    store = Store(make_config(store_url))
    store.ensure()
    outcomes, errors = race(8, lambda i: store.start_run(f"run{i}", WINDOW, claim_ttl_seconds=600))
    assert errors == []
    assert outcomes == {"won": 1, "claimed": 7}
    runs = store.runs_for(WINDOW)
    assert len(runs) == 1 and runs[0]["status"] == "running"
    # A different window (or granularity) is not blocked by that claim.
    store.start_run("other", daily_window(DAY + dt.timedelta(days=1)), claim_ttl_seconds=600)
    # Finishing releases the claim: the window can be claimed again.
    store.finish_run(runs[0]["run_id"], "success", duration_seconds=1.0)
    store.start_run("again", WINDOW, claim_ttl_seconds=600)


def test_a_stale_claim_is_taken_over_by_exactly_one_run(store_url: str) -> None:
    store = Store(make_config(store_url))
    store.ensure()
    store.start_run("killed", WINDOW, claim_ttl_seconds=60)
    with pytest.raises(WindowClaimed, match="being run by run killed"):
        store.start_run("early", WINDOW, claim_ttl_seconds=60)
    later = utcnow() + dt.timedelta(seconds=61)
    outcomes, errors = race(6, lambda i: store.start_run(f"late{i}", WINDOW, claim_ttl_seconds=60, now=later))
    assert errors == []
    assert outcomes == {"won": 1, "claimed": 5}
    runs = {r["run_id"]: r for r in store.runs_for(WINDOW)}
    assert runs["killed"]["status"] == "failed" and "abandoned" in runs["killed"]["error"]
    assert sorted(r["status"] for r in runs.values()) == ["failed", "running"]


def test_redo_modes_are_checked_under_the_claim(store_url: str) -> None:
    store = Store(make_config(store_url))
    store.ensure()
    store.start_run("a", WINDOW, claim_ttl_seconds=60, redo="missing")
    store.finish_run("a", "failed", duration_seconds=1.0, error="boom")
    with pytest.raises(WindowDone, match=r"finished run \(failed\)"):
        store.start_run("b", WINDOW, claim_ttl_seconds=60, redo="missing")
    store.start_run("c", WINDOW, claim_ttl_seconds=60, redo="failed")  # failed: runs again
    store.finish_run("c", "success", duration_seconds=1.0)
    with pytest.raises(WindowDone):
        store.start_run("d", WINDOW, claim_ttl_seconds=60, redo="failed")
    store.start_run("e", WINDOW, claim_ttl_seconds=60, redo="all")
    # A skipped start leaves no claim behind and no run row.
    assert [r["run_id"] for r in store.runs_for(WINDOW)] == ["a", "c", "e"]
    with pytest.raises(ValueError, match="missing, failed, all"):
        store.start_run("f", WINDOW, claim_ttl_seconds=60, redo="some")


def test_needs_run_table() -> None:
    assert [needs_run(s, "missing") for s in (None, "success", "degraded", "failed")] == [True, False, False, False]
    assert [needs_run(s, "failed") for s in (None, "success", "degraded", "failed")] == [True, False, True, True]
    assert all(needs_run(s, "all") for s in (None, "success", "degraded", "failed"))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_concurrent_claims_from_separate_processes(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # DuckDB is not here on purpose: a DuckDB file is opened read-write by one process
    # at a time, so a second process cannot even open the store (docs: Running and backfills).
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    else:
        url = f"{PG_URL}?options=-csearch_path%3D{request.getfixturevalue('pg_schema')}"
    Store(make_config(url)).ensure()
    ctx = mp.get_context("spawn")
    n = 3
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=claim_child.claim, args=(url, DAY, i, barrier, results)) for i in range(n)]
    for p in procs:
        p.start()
    got = Counter(results.get(timeout=120) for _ in range(n))
    for p in procs:
        p.join(30)
    assert got == {"won": 1, "claimed": n - 1}
    assert len(Store(make_config(url)).runs_for(WINDOW)) == 1


KILLED_RUN = """
import sys, time
from tests.conftest import make_config
from aimon.store.metrics import Store
from aimon.windows import daily_window
from aimon.tasks.orchestration.run import begin_run
from tests.conftest import DAY
store = Store(make_config(sys.argv[1]))
store.ensure()  # the store-only file: begin_run refuses a missing warehouse file
run = begin_run(store, daily_window(DAY), claim_ttl_seconds=float(sys.argv[2]))
print(run.run_id, flush=True)
time.sleep(600)  # killed here, mid-run
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_killed_runs_window_is_claimable_again_after_expiry(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from aimon.tasks.orchestration.run import begin_run

    if backend == "duckdb":
        url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    else:
        url = f"{PG_URL}?options=-csearch_path%3D{request.getfixturevalue('pg_schema')}"
    ttl = 3.0
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, url, str(ttl)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        killed_id = proc.stdout.readline().strip()
        assert killed_id, "the child did not start its run"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
    started = time.monotonic()
    store = Store(make_config(url))
    if time.monotonic() - started < ttl - 0.5:
        with pytest.raises(WindowClaimed, match=killed_id):
            begin_run(store, WINDOW, claim_ttl_seconds=ttl)
    time.sleep(ttl + 0.1)
    run = begin_run(store, WINDOW, claim_ttl_seconds=ttl)
    runs = {r["run_id"]: r for r in store.runs_for(WINDOW)}
    assert runs[killed_id]["status"] == "failed" and "abandoned" in runs[killed_id]["error"]
    assert runs[run.run_id]["status"] == "running"


# -- transient errors: real ones from the real services ------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused_is_transient_and_a_missing_table_is_not(duck_url: str) -> None:
    from aimon.warehouse import Warehouse

    cfg = make_config(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test")
    with pytest.raises(ContractError) as refused:
        Warehouse(cfg.warehouse).describe()  # wraps the driver error, `from None`
    assert transient_reason(refused.value) is not None
    cfg = make_config(duck_url, warehouse={"interactions_table": "nope"})
    with pytest.raises(ContractError) as missing:
        Warehouse(cfg.warehouse).describe()
    assert transient_reason(missing.value) is None
    assert transient_reason(ValueError("bad value")) is None


@pytest.mark.postgres
def test_deadlock_serialization_failure_and_statement_timeout_are_transient(pg_schema: str) -> None:
    engine = sa.create_engine(f"{PG_URL}?options=-csearch_path%3D{pg_schema}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id int primary key, v int)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1, 0), (2, 0)"))

    # Deadlock: two transactions lock the rows in opposite order.
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def lock(first: int, second: int) -> None:
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("UPDATE t SET v = v + 1 WHERE id = :i"), {"i": first})
                barrier.wait()
                conn.execute(sa.text("UPDATE t SET v = v + 1 WHERE id = :i"), {"i": second})
        except sa.exc.DBAPIError as err:
            errors.append(err)

    threads = [threading.Thread(target=lock, args=a) for a in ((1, 2), (2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(errors) == 1 and transient_reason(errors[0]) == "deadlock detected"

    # Serialization failure: two SERIALIZABLE transactions that read what the other writes.
    a, b = engine.connect(), engine.connect()
    try:
        for c in (a, b):
            c.execution_options(isolation_level="SERIALIZABLE")
            c.begin()
        a.execute(sa.text("SELECT sum(v) FROM t")).all()
        b.execute(sa.text("SELECT sum(v) FROM t")).all()
        a.execute(sa.text("UPDATE t SET v = 10 WHERE id = 1"))
        b.execute(sa.text("UPDATE t SET v = 10 WHERE id = 2"))
        a.commit()
        with pytest.raises(sa.exc.DBAPIError) as ser:
            b.commit()
        assert transient_reason(ser.value) == "serialization failure"
    finally:
        a.close()
        b.close()

    with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError) as slow:
        conn.execute(sa.text("SET statement_timeout = 50"))
        conn.execute(sa.text("SELECT pg_sleep(2)"))
    assert transient_reason(slow.value) == "statement timeout / query canceled"

    with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError) as missing:
        conn.execute(sa.text("SELECT * FROM no_such_table"))
    assert transient_reason(missing.value) is None
    engine.dispose()


# -- windows on DST days ---------------------------------------------------------------


def test_backfill_windows_on_dst_days_in_berlin() -> None:
    tz = "Europe/Berlin"
    spring = windows_between(dt.date(2026, 3, 28), dt.date(2026, 3, 30), "daily", tz)
    assert [(w.start, w.end) for w in spring] == [
        (dt.datetime(2026, 3, 27, 23), dt.datetime(2026, 3, 28, 23)),
        (dt.datetime(2026, 3, 28, 23), dt.datetime(2026, 3, 29, 22)),  # 23 hours
        (dt.datetime(2026, 3, 29, 22), dt.datetime(2026, 3, 30, 22)),
    ]
    autumn = windows_between(dt.date(2026, 10, 25), dt.date(2026, 10, 25), "daily", tz)
    assert autumn[0].end - autumn[0].start == dt.timedelta(hours=25)
    hours = windows_between(dt.date(2026, 10, 25), dt.date(2026, 10, 25), "hourly", tz)
    assert len(hours) == 25 and all(w.end - w.start == dt.timedelta(hours=1) for w in hours)
    assert hours[0].start == autumn[0].start and hours[-1].end == autumn[0].end
    # The repeated 02:00 local hour is two distinct windows.
    assert len({w.start for w in hours}) == 25
    assert len(windows_between(dt.date(2026, 3, 29), dt.date(2026, 3, 29), "hourly", tz)) == 23
