"""The capture side (aimon.capture): the logger writes contract rows to a real
warehouse (DuckDB, SQLite, PostgreSQL) off the request path, masks before anything
leaves, survives a sink outage and a restart through its spool without losing or
doubling a row, and `aimon ingest jsonl` loads files idempotently, counting bad lines."""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from aimon.capture import InteractionLogger, JsonlSink, WarehouseSink, error_type_of, mask
from aimon.capture import journal as wal
from aimon.capture.ingest import ingest_jsonl
from aimon.capture.journal import Journal
from aimon.capture.masking import Masker, luhn
from aimon.cli import app
from aimon.errors import CaptureError

T0 = dt.datetime(2026, 12, 6, 10, 0, 0)


def count(path: Path, where: str = "") -> int:
    con = duckdb.connect(str(path))
    try:
        return len(con.execute(f"SELECT 1 FROM interactions {where}").fetchall())
    finally:
        con.close()


def test_import_stays_light() -> None:
    code = (
        "import sys, aimon.capture, aimon.capture.ingest; "
        "lg = aimon.capture.InteractionLogger.from_config('configs/monitoring.yaml', sink='jsonl:/tmp/aimon-light'); "
        "lg.close(); "
        "heavy = [m for m in ('prefect', 'evidently', 'scipy', 'sklearn', 'sqlalchemy', 'duckdb', 'pandas') "
        "if m in sys.modules]; print(heavy)"
    )
    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo).stdout
    assert out.strip() == "[]"


def test_logged_rows_land_in_the_contract_table(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    with InteractionLogger(url, create_table=True, flush_interval=0.05, user_id_key="k") as lg:
        rid = lg.log(
            "gpt-4o",
            endpoint="chat",
            input_tokens=120,
            cached_input_tokens=20,
            output_tokens=30,
            latency_seconds=0.8,
            prompt="Reach me at jane@example.com or +1 415 555 0132",
            response="ok",
            user_id="user-1",
            experiment="exp",
            variant="b",
            retrieved_ids=["d1", "d2"],
            embedding=[0.1, 0.2],
            metadata={"tenant": "acme"},
            finish_reason="stop",
        )
        with lg.call(model="claude", endpoint="rag") as rec:
            rec.usage({"input_tokens": 10, "output_tokens": 4, "cache_read_input_tokens": 6})
        with pytest.raises(TimeoutError), lg.call(model="claude", endpoint="rag"):
            raise TimeoutError("slow")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    row = con.sql(f"SELECT * FROM interactions WHERE request_id = '{rid}'").df().iloc[0]
    assert row["model"] == "gpt-4o" and row["status"] == "ok" and row["input_tokens"] == 120
    assert row["prompt"] == "Reach me at <email> or <phone>"  # masked by default
    assert len(row["prompt_hash"]) == 32  # of the text as sent: the cache figures need no text
    assert row["user_id"] != "user-1" and len(row["user_id"]) == 32  # keyed hash
    assert json.loads(row["retrieved_ids"]) == ["d1", "d2"] and json.loads(row["metadata"]) == {"tenant": "acme"}
    calls = con.sql(
        "SELECT status, input_tokens, output_tokens, latency_seconds FROM interactions WHERE model = 'claude'"
    )
    got = sorted(calls.fetchall(), key=lambda r: r[0])
    assert got[0][:3] == ("ok", 16, 4) and got[0][3] > 0  # Anthropic's cache reads count as input
    assert got[1][0] == "timeout"
    con.close()


def test_bad_calls_are_counted_in_production_and_refused_in_strict_mode(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    with InteractionLogger(url, create_table=True, flush_interval=0.05) as lg:
        lg.log("m", input_tokens=-1)
        lg.log(None)
        lg.log("m", input_tokens="12")  # type: ignore[arg-type]
        lg.log("m", input_tokens=5)
    assert lg.stats.rejected == {
        "negative input_tokens": 1,
        "missing model": 1,
        "input_tokens is not an integer: '12'": 1,
    }
    assert count(tmp_path / "w.duckdb") == 1
    strict = InteractionLogger(JsonlSink(tmp_path / "j"), strict=True)
    with pytest.raises(CaptureError, match="negative output_tokens"):
        strict.log("m", output_tokens=-3)
    with pytest.raises(CaptureError, match="missing model"):
        strict.log(None)
    strict.close()


class Flaky:
    """A sink that is down while `down` is set; counts what reached the table."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.down = threading.Event()
        self.calls = 0

    def write(self, rows: list[dict[str, Any]]) -> int | None:
        self.calls += 1
        if self.down.is_set():
            raise ConnectionError("warehouse down")
        return self.inner.write(rows)

    def close(self) -> None:
        self.inner.close()


def test_an_outage_spools_and_replays_in_order_without_loss_or_doubles(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    sink = Flaky(WarehouseSink(f"duckdb:///{db}", create=True))
    lg = InteractionLogger(sink, spool=tmp_path / "s.jsonl", flush_interval=0.02, retry_interval=0.05, batch_size=100)
    for i in range(500):
        lg.log("m", request_id=f"a{i}", timestamp=T0 + dt.timedelta(seconds=i))
    lg.flush()
    sink.down.set()
    for i in range(1500):
        lg.log("m", request_id=f"b{i}", timestamp=T0 + dt.timedelta(seconds=600 + i))
    lg.flush()
    assert lg.spool is not None and lg.spool.pending() and lg.stats.spooled >= 1500
    sink.down.clear()
    lg.flush()
    lg.close()
    assert count(db) == 2000 and count(db, "GROUP BY request_id HAVING count(*) > 1") == 0
    assert lg.stats.dropped == 0 and lg.stats.replayed >= 1500 and not lg.spool.pending()


def test_a_restart_replays_what_the_last_process_spooled(tmp_path: Path) -> None:
    db, spool = tmp_path / "w.duckdb", tmp_path / "s.jsonl"
    sink = Flaky(WarehouseSink(f"duckdb:///{db}", create=True))
    sink.down.set()
    lg = InteractionLogger(sink, spool=spool, flush_interval=0.02, retry_interval=60)
    for i in range(300):
        lg.log("m", request_id=f"r{i}", timestamp=T0)
    lg.close()  # the warehouse never came back in this process
    assert lg.spool is not None and lg.spool.pending() and lg.stats.written == 0 and lg.stats.spooled == 300
    lg2 = InteractionLogger(f"duckdb:///{db}", create_table=True, spool=spool, flush_interval=0.02)
    lg2.log("m", request_id="r0", timestamp=T0)  # a duplicate of a spooled row
    lg2.close()
    assert count(db) == 300 and lg2.stats.replayed == 300


def test_the_journal_keeps_what_was_queued_and_not_delivered(tmp_path: Path) -> None:
    spool = tmp_path / "s.jsonl"
    j = Journal(spool, tmp_path, segment_bytes=600)  # a few records a segment: rollover and removal
    q: collections.deque[tuple[Any, ...]] = collections.deque()
    items = [
        (T0 + dt.timedelta(seconds=i), f"r{i}", "m", "ok", None, 0.25, i, None, ["d1", "d2"], {"k": i})
        for i in range(40)
    ]
    for it in items:
        j.append(it, q)
    assert list(q) == items
    segments = sorted(tmp_path.glob("s.jsonl.journal-*"))
    assert len(segments) > 3
    assert list(wal.recover(spool, tmp_path)) == []  # a live journal's segments are its own
    j.commit(25)
    assert len(sorted(tmp_path.glob("s.jsonl.journal-*"))) < len(segments)  # fully committed ones removed
    j.close()  # as a kill leaves it: 15 records not committed
    recovered = list(wal.recover(spool, tmp_path))
    got = [it for _, its in recovered for it in its]
    assert got == [(*it[:8], list(it[8]), it[9]) for it in items[25:]]  # JSON round trip
    for path, _ in recovered:  # the caller deletes them once the rows are safe
        path.unlink()
    # A record bigger than a segment gets one of its own; the flusher's spare stays for later.
    j = Journal(spool, tmp_path, segment_bytes=600)
    j.prepare()
    j.append((T0, "x" * 2000), q)
    j.append((T0, "small"), q)
    j.commit(len(q))
    j.close()
    assert not list(tmp_path.glob("s.jsonl.journal-*"))  # every segment, the spare too, removed


def test_a_journal_without_room_stops_and_the_queue_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A full /dev/shm: the next segment cannot be allocated. Writing into a page that
    # cannot be had would be a SIGBUS, so the journal stops and the rows still queue.
    spool = tmp_path / "s.jsonl"
    j = Journal(spool, tmp_path, segment_bytes=400)
    q: collections.deque[tuple[Any, ...]] = collections.deque()
    for i in range(3):
        j.append((T0, f"r{i}"), q)

    def full(*a: Any, **k: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wal, "_Segment", full)
    j.prepare()  # the flusher's spare: no room, no error
    for i in range(3, 40):
        j.append((T0, f"r{i}"), q)
    assert len(q) == 40 and j.broken is not None and "No space" in j.broken
    monkeypatch.undo()
    j.commit(2)
    j.close()  # as a kill leaves it: what was journaled and not committed is recovered
    got = [it for _, its in wal.recover(spool, tmp_path) for it in its]
    ids = [it[1] for it in got if it is not None]
    assert ids[:2] == ["r2", "r3"] and len(ids) < 38  # from the first uncommitted on, only what fit


def test_the_journal_keeps_the_queue_order_under_concurrent_calls(tmp_path: Path) -> None:
    spool = tmp_path / "s.jsonl"
    j = Journal(spool, tmp_path, segment_bytes=4096)
    q: collections.deque[tuple[Any, ...]] = collections.deque()

    def app_thread(k: int) -> None:
        for i in range(5000):
            j.append((T0 + dt.timedelta(microseconds=i), k, i), q)

    threads = [threading.Thread(target=app_thread, args=(k,)) for k in range(4)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the threads interleave at every chance they get
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(switch)
    j.commit(1000)
    j.close()  # 19,000 left, as a kill would leave them
    got = [it for _, its in wal.recover(spool, tmp_path) for it in its]
    assert got == list(q)[1000:]  # the queue's order, record for record


def test_a_logger_with_a_spool_leaves_no_journal_when_it_closes(tmp_path: Path) -> None:
    db, spool = tmp_path / "w.duckdb", tmp_path / "s.jsonl"
    lg = InteractionLogger(f"duckdb:///{db}", create_table=True, spool=spool, flush_interval=0.02)

    def app_thread(k: int) -> None:  # four request threads at once: the journal's order is the queue's
        for i in range(500):
            lg.log("m", request_id=f"r{k}-{i}", timestamp=T0, input_tokens=i)

    threads = [threading.Thread(target=app_thread, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    where = wal.journal_dir(spool)
    assert list(where.glob("s.jsonl.journal-*"))
    lg.close()
    assert count(db) == 2000 and not where.exists()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_forked_worker_logs_its_own_rows(tmp_path: Path) -> None:
    # gunicorn --preload: the logger is made before the fork. The child must get its
    # own flusher and its own request ids (the parent's would make its rows doubles).
    spool = tmp_path / "s.jsonl"
    lg = InteractionLogger(JsonlSink(tmp_path / "j"), spool=spool, flush_interval=0.02)
    lg.log("parent", timestamp=T0)
    pid = os.fork()
    if pid == 0:  # the child: log, deliver, leave without pytest's teardown
        code = 1
        try:
            for _ in range(100):
                lg.log("child", timestamp=T0)
            lg.close()
            code = 0 if lg.stats.written == 100 else 2
        finally:
            os._exit(code)
    for _ in range(100):
        lg.log("parent", timestamp=T0)
    _, status = os.waitpid(pid, 0)
    lg.close()
    assert os.waitstatus_to_exitcode(status) == 0
    rows = [json.loads(line) for f in sorted((tmp_path / "j").glob("*.jsonl")) for line in f.read_text().splitlines()]
    assert sorted(Counter(r["model"] for r in rows).items()) == [("child", 100), ("parent", 101)]
    assert len({r["request_id"] for r in rows}) == 201
    assert not wal.journal_dir(spool).exists()  # both journals delivered and removed


def test_deferred_rows_are_made_in_the_flusher_and_a_failing_one_is_counted(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    made: list[str] = []

    def fields(rid: str, n: int) -> dict[str, Any]:
        made.append(threading.current_thread().name)
        if n < 0:
            raise ValueError("broken maker")
        return {"timestamp": T0, "request_id": rid, "model": "m", "input_tokens": n, "path": "/v1/x"}

    with InteractionLogger(f"duckdb:///{db}", create_table=True, flush_interval=0.02) as lg:
        lg.defer(fields, "a", 3)
        lg.defer(fields, "b", -1)
        lg.defer(fields, "c", 5)
        lg.log("m", request_id="d", timestamp=T0)
        deadline = time.monotonic() + 10
        while lg.stats.written < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert made == ["aimon-capture-flusher"] * 3  # made by the flusher, not the caller
    assert lg.stats.logged == 4 and lg.stats.rejected == {"deferred row failed": 1}
    con = duckdb.connect(str(db))
    rows = con.execute("SELECT request_id, status, input_tokens, metadata FROM interactions ORDER BY 1").fetchall()
    con.close()
    assert [r[:3] for r in rows] == [("a", "ok", 3), ("c", "ok", 5), ("d", "ok", None)]
    assert json.loads(rows[0][3]) == {"path": "/v1/x"}  # an unknown name rides in metadata


def test_a_full_queue_spills_and_counts_drops_without_blocking(tmp_path: Path) -> None:
    sink = Flaky(JsonlSink(tmp_path / "j"))
    sink.down.set()
    lg = InteractionLogger(
        sink, queue_size=10, flush_interval=60, spool=tmp_path / "s.jsonl", spool_max_bytes=4000, journal=False
    )
    for i in range(200):
        lg.log("m", request_id=f"r{i}", timestamp=T0)
    assert lg.stats.logged == 200
    assert lg.stats.spooled > 0 and lg.stats.dropped > 0  # the spool took what fit, the rest is counted
    assert lg.stats.spooled + lg.stats.dropped == 190
    lg._stop.set()  # no close: nothing more to write


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_row_store_sinks_are_idempotent(tmp_path: Path, engine: str) -> None:
    if engine == "sqlite":
        url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    else:
        url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        pg = sa.create_engine(url)
        with pg.begin() as c:
            c.exec_driver_sql("DROP TABLE IF EXISTS capture_test")
        pg.dispose()
    table = "capture_test" if engine == "postgresql" else "interactions"
    sink = WarehouseSink(url, table, create=True)
    rows = [
        {
            "timestamp": T0 + dt.timedelta(seconds=i),
            "request_id": f"r{i}",
            "model": "m",
            "status": "ok",
            "input_tokens": i,
        }
        for i in range(2000)
    ]
    assert sink.write(rows[:1500]) == 1500
    assert sink.write(rows[1000:] + rows[1000:1010]) == 500  # overlap and in-batch doubles skipped
    engine_ = sa.create_engine(url)
    with engine_.connect() as c:
        n, ids, tokens = c.exec_driver_sql(
            f"SELECT count(*), count(DISTINCT request_id), sum(input_tokens) FROM {table}"
        ).one()
    engine_.dispose()
    assert (n, ids, tokens) == (2000, 2000, sum(range(2000)))
    sink.close()


def test_jsonl_files_rotate_and_ingest_idempotently(tmp_path: Path) -> None:
    with InteractionLogger(f"jsonl:{tmp_path / 'j'}", flush_interval=0.02) as lg:
        for h in range(3):
            for i in range(10):
                lg.log("m", request_id=f"h{h}-{i}", timestamp=T0 + dt.timedelta(hours=h, minutes=i), prompt="hi")
    files = sorted((tmp_path / "j").glob("*.jsonl"))
    assert [f.name for f in files] == [f"interactions-2026-12-06T{h}.jsonl" for h in (10, 11, 12)]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"model": "m", "timestamp": "2026-12-06T09:00:00Z"}\nnope\n[]\n{"model": "m", "timestamp": "x"}\n')
    db = tmp_path / "w.duckdb"
    sink = WarehouseSink(f"duckdb:///{db}", create=True)
    r1 = ingest_jsonl([*files, bad], sink)
    assert (r1.lines, r1.loaded) == (34, 31)
    assert dict(r1.skipped) == {"not JSON": 1, "not a JSON object: list": 1, "timestamp is not ISO 8601: 'x'": 1}
    r2 = ingest_jsonl([*files, bad], sink)  # again: the made-up id of the id-less line is stable too
    assert r2.loaded == 0 and r2.valid == 31 and count(db) == 31


def test_the_ingest_command_says_what_it_loaded_and_fails_on_one_line(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    f.write_text('{"model": "m", "timestamp": "2026-12-06T09:00:00Z", "input_tokens": -2}\n')
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    runner = CliRunner()
    res = runner.invoke(app, ["ingest", "jsonl", str(f), "--url", url, "--create", "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["loaded"] == 0 and doc["skipped"] == {"negative input_tokens": 1}
    res = runner.invoke(app, ["ingest", "jsonl", str(tmp_path / "missing.jsonl"), "--url", url])
    assert res.exit_code == 2 and "run failed: ingest failed:" in res.stderr and "Traceback" not in res.output


def test_masking() -> None:
    assert mask("write to a.b-c@mail.example.org today") == "write to <email> today"
    assert mask("card 4111 1111 1111 1111, order 1234 5678 9012 3456") == "card <card>, order 1234 5678 9012 3456"
    assert mask("key sk-proj-abcdefghijklmnopqrstuv and Bearer eyJhbGciOi.abcdefghij.klmnopqrst") == (
        "key <secret> and <secret>"
    )
    assert mask("call +44 20 7946 0958 on 2026-12-06, v3.11.7, 42 tokens") == (
        "call <phone> on 2026-12-06, v3.11.7, 42 tokens"
    )
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    m = Masker("masked", patterns=[r"ACME-\d+"])
    assert m.text("ticket ACME-123") == "ticket <masked>"
    assert Masker("none").text("secret") is None and Masker("full").text("a@b.co") == "a@b.co"
    with pytest.raises(ValueError, match="store_text"):
        Masker("partial")  # type: ignore[arg-type]


def test_error_types_of_provider_exceptions() -> None:
    class RateLimitError(Exception):
        pass

    class APIStatusError(Exception):
        def __init__(self, code: int):
            self.status_code = code

    assert error_type_of(RateLimitError()) == "rate_limit_exceeded"
    assert error_type_of(TimeoutError()) == "timeout"
    assert error_type_of(APIStatusError(404)) == "model_not_found"
    assert error_type_of(APIStatusError(400)) == "invalid_request"
    assert error_type_of(APIStatusError(503)) == "server_error"
    assert error_type_of(ValueError("x")) == "other"


def test_a_logger_from_the_config_takes_its_capture_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    db = tmp_path / "w.duckdb"
    cfg = tmp_path / "monitoring.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": f"duckdb:///{db}", "interactions_table": "calls"},
                "capture": {
                    "store_text": "masked",
                    "mask_patterns": [r"ACME-\d+"],
                    "user_id_key_env": "AIMON_TEST_UID_KEY",
                    "flush_interval_seconds": 0.05,
                    "spool": str(tmp_path / "s.jsonl"),
                    "journal_dir": str(tmp_path / "journal"),
                },
            }
        )
    )
    monkeypatch.delenv("AIMON_TEST_UID_KEY", raising=False)
    with pytest.raises(CaptureError, match="AIMON_TEST_UID_KEY"):
        InteractionLogger.from_config(cfg)
    monkeypatch.setenv("AIMON_TEST_UID_KEY", "k")
    with InteractionLogger.from_config(cfg, create_table=True) as lg:
        lg.log("m", prompt="ticket ACME-42 from a@b.co", user_id="alice", timestamp=T0)
        assert list((tmp_path / "journal").glob("s.jsonl.journal-*"))  # journaled where configured
    assert not (tmp_path / "journal").exists()
    con = duckdb.connect(str(db))
    prompt, uid = con.execute("SELECT prompt, user_id FROM calls").fetchone()  # type: ignore[misc]
    con.close()
    assert prompt == "ticket <masked> from <email>" and uid == Masker(user_id_key="k").user_id("alice")
