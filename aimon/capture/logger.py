"""InteractionLogger: log one interaction in the data contract's terms from the
monitored app, off the request path.

`log()` builds the row and appends it to a bounded in-memory queue (a deque: no lock,
no I/O); a background flusher takes batches (by size, or by age: `flush_interval`),
checks them (aimon.capture.record.check), masks prompts, responses and user ids
(aimon.capture.masking), and writes them to the sink. On a sink failure the batch goes
to the spool (when one is set) and later batches follow it there until a replay, every
`retry_interval` seconds, loads it all in order; a new process replays what an old one
left. A full queue spills to the spool; when that is full too (or there is none) the
row is dropped, counted, and logged once a minute. Nothing is raised into the request
path unless `strict=True` (development): then a bad call raises CaptureError at once.
docs/capture.md.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import datetime as dt
import itertools
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aimon.capture import journal as wal
from aimon.capture.calls import CallRecord, error_type_of
from aimon.capture.masking import Masker, StoreText
from aimon.capture.record import check
from aimon.capture.sinks import PAUSE_EVERY, JsonlSink, Sink, WarehouseSink
from aimon.capture.spool import Spool
from aimon.errors import CaptureError
from aimon.prompts import prompt_hash

log = logging.getLogger("aimon.capture")
UTC = dt.UTC


@dataclass
class CaptureStats:
    """What the logger did since it started (read them for a /metrics endpoint)."""

    logged: int = 0  # log() calls taken
    written: int = 0  # rows the sink took (replays included)
    spooled: int = 0  # rows written to the spool (outage or full queue)
    replayed: int = 0  # spooled rows loaded later
    dropped: int = 0  # rows lost: full queue and no room in the spool, or no spool at close
    rejected: dict[str, int] = field(default_factory=dict)  # rows refused by check(), by reason
    sink_errors: int = 0  # failed sink writes


# The order of log()'s queued tuple (the last item: the feature columns, a mapping).
_ROW = [
    "timestamp",
    "request_id",
    "model",
    "status",
    "endpoint",
    "latency_seconds",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cost_usd",
    "experiment",
    "variant",
    "prompt",
    "response",
    "finish_reason",
    "user_id",
    "label",
    "prediction",
    "confidence",
    "retrieved_ids",
    "relevant_ids",
    "embedding",
    "metadata",
]


# The flusher prepares rows in slices and sleeps between them (off the GIL).
_SLICE = PAUSE_EVERY
_PAUSE = 0.0001

# log()'s keywords: the row's columns and `features`.
_LOG_FIELDS = frozenset([*_ROW, "features"])


def as_row(item: tuple[Any, ...]) -> dict[str, Any]:
    """A queued tuple as a row: its non-None values by column, the features merged in."""
    row = {k: v for k, v in zip(_ROW, item, strict=False) if v is not None}
    if item[-1]:
        row.update({k: v for k, v in item[-1].items() if v is not None})
    return row


_LOGGERS: weakref.WeakSet[InteractionLogger] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for lg in list(_LOGGERS):
        if not lg._stop.is_set():
            lg._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class InteractionLogger:
    def __init__(
        self,
        sink: Sink | str,
        *,
        table: str = "interactions",
        create_table: bool = False,
        features: Mapping[str, str] | None = None,
        store_text: StoreText = "masked",
        mask_patterns: Sequence[str] = (),
        user_id_key: str | bytes | None = None,
        batch_size: int = 1000,
        flush_interval: float = 1.0,
        queue_size: int = 100_000,
        spool: str | os.PathLike[str] | None = None,
        spool_max_bytes: int = 256 * 1024 * 1024,
        retry_interval: float = 5.0,
        journal: bool | str | os.PathLike[str] = True,
        strict: bool = False,
        spans: Any = None,
    ):
        """`sink`: a Sink, a SQLAlchemy URL (the warehouse table `table`, created with
        `create_table`), or ``jsonl:DIR`` (hourly files). `features`: extra columns
        (name -> SQL type) rows may carry. `spans`: an aimon.capture.otel.GenAISpans to
        also emit each row as an OpenTelemetry GenAI span (from the flusher, after
        masking). `journal` (with a spool): rows queued but not yet delivered survive a
        kill -9 (aimon.capture.journal); True: in /dev/shm, or a directory."""
        if isinstance(sink, str):
            sink = (
                JsonlSink(sink[len("jsonl:") :])
                if sink.startswith("jsonl:")
                else WarehouseSink(sink, table, create=create_table, features=features)
            )
        self.sink: Sink = sink
        if hasattr(sink, "pause"):
            setattr(sink, "pause", _PAUSE)  # noqa: B010  our sinks' Python loops give the GIL back to the app
        self.features = dict(features or {})
        self.masker = Masker(store_text, mask_patterns, user_id_key)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.queue_size = queue_size
        self.retry_interval = retry_interval
        self.strict = strict
        self.spans = spans
        self.spool = Spool(spool, spool_max_bytes) if spool is not None else None
        self.stats = CaptureStats()
        self._q: collections.deque[tuple[Any, ...]] = collections.deque()
        self._held: list[dict[str, Any]] = []  # prepared rows waiting for the sink (no spool)
        self._ids = itertools.count()
        self._prefix = uuid.uuid4().hex[:16]
        self._down_since: float | None = None
        self._last_try = 0.0
        self._dropped_reported = 0
        self._last_report = time.monotonic()
        self._journal: wal.Journal | None = None
        self._journal_dir = None if isinstance(journal, bool) else Path(journal)
        if self.spool is not None:
            self._recover()
            if journal is not False and wal.AVAILABLE:
                self._journal = wal.Journal(self.spool.path, self._journal_dir)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="aimon-capture-flusher", daemon=True)
        self._thread.start()
        atexit.register(self.close)
        _LOGGERS.add(self)

    def _after_fork(self) -> None:
        """In a forked child (gunicorn --preload, multiprocessing with fork): the
        parent's flusher thread is not here, and its request-id prefix would make the
        child's ids the parent's (then one of the two rows is dropped as a double). The
        child gets its own prefix, queue, journal and flusher; rows the parent had
        queued are the parent's to deliver."""
        self._prefix = uuid.uuid4().hex[:16]
        self._ids = itertools.count()
        self._q = collections.deque()
        self._held = []
        self.stats = CaptureStats()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        after_fork = getattr(self.sink, "after_fork", None)
        if after_fork is not None:
            after_fork()
        if self.spool is not None:
            self.spool.after_fork()
        if self._journal is not None and self.spool is not None:
            self._journal.forget()  # the parent's segments: its to commit
            self._journal = wal.Journal(self.spool.path, self._journal_dir)
        self._thread = threading.Thread(target=self._run, name="aimon-capture-flusher", daemon=True)
        self._thread.start()

    @classmethod
    def from_config(cls, config: Any = None, **overrides: Any) -> InteractionLogger:
        """A logger writing to the config's warehouse table with its `capture:` settings
        (store_text, mask_patterns, user_id_key_env, spool and journal, batch and queue sizes).
        `config`: a Config, a YAML path, or None (AIMON_CONFIG, then
        ./configs/monitoring.yaml). `overrides`: any constructor keyword."""
        from aimon.config import Config, load_config  # noqa: PLC0415  the config only when asked for

        cfg = config if isinstance(config, Config) else load_config(config)
        c = cfg.capture
        key = os.environ.get(c.user_id_key_env) if c.user_id_key_env else None
        if c.user_id_key_env and not key:
            raise CaptureError(f"capture.user_id_key_env names {c.user_id_key_env}, which is not set")
        kwargs: dict[str, Any] = {
            "table": cfg.warehouse.interactions_table,
            "store_text": c.store_text,
            "mask_patterns": c.mask_patterns,
            "user_id_key": key,
            "spool": c.spool,
            "journal": c.journal_dir if c.journal and c.journal_dir else c.journal,
            "batch_size": c.batch_size,
            "flush_interval": c.flush_interval_seconds,
            "queue_size": c.queue_size,
        }
        sink = overrides.pop("sink", cfg.warehouse.url)
        kwargs.update(overrides)
        return cls(sink, **kwargs)

    # -- the request path ---------------------------------------------------------------------

    def log(
        self,
        model: str | None = None,
        *,
        status: str = "ok",
        endpoint: str | None = None,
        latency_seconds: float | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_input_tokens: int | None = None,
        cost_usd: float | None = None,
        request_id: str | None = None,
        timestamp: dt.datetime | None = None,
        experiment: str | None = None,
        variant: str | None = None,
        prompt: str | None = None,
        response: str | None = None,
        finish_reason: str | None = None,
        user_id: str | None = None,
        label: Any = None,
        prediction: Any = None,
        confidence: float | None = None,
        retrieved_ids: Sequence[str] | None = None,
        relevant_ids: Sequence[str] | None = None,
        embedding: Sequence[float] | None = None,
        features: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> str:
        """Queue one interaction; returns its request_id (made up when not given)."""
        rid = request_id if request_id is not None else self.new_id()
        try:
            # A tuple in _ROW's order: the dict (and the checks, and masking) are the
            # flusher's work, off the request path.
            item = (
                timestamp if timestamp is not None else dt.datetime.now(UTC),
                rid,
                model,
                status,
                endpoint,
                latency_seconds,
                input_tokens,
                output_tokens,
                cached_input_tokens,
                cost_usd,
                experiment,
                variant,
                prompt,
                response,
                finish_reason,
                user_id,
                label,
                prediction,
                confidence,
                retrieved_ids,
                relevant_ids,
                embedding,
                metadata,
                features,
            )
            if self.strict:
                reason = check(as_row(item), self.features)
                if reason is not None:
                    raise CaptureError(f"aimon.capture: interaction {rid} refused: {reason}")
            self.stats.logged += 1
            q = self._q
            if len(q) >= self.queue_size:
                self._overflow(item)
            else:
                if self._journal is not None:
                    self._journal.append(item, q)
                else:
                    q.append(item)
                if len(q) >= self.batch_size and not self._wake.is_set():
                    self._wake.set()
        except CaptureError:
            raise
        except Exception:  # never into the request path
            self.stats.rejected["internal"] = self.stats.rejected.get("internal", 0) + 1
        return rid

    def new_id(self) -> str:
        """A request id unique to this process's logger (a random prefix and a counter)."""
        return f"{self._prefix}-{next(self._ids)}"

    def log_fields(self, fields: Mapping[str, Any]) -> str:
        """`log(**fields)`, where names log() does not take ride along in metadata
        instead of failing the call (what the middleware and call() use)."""
        known = {k: v for k, v in fields.items() if k in _LOG_FIELDS}
        extra = {k: v for k, v in fields.items() if k not in _LOG_FIELDS}
        if extra:
            known["metadata"] = {**(fields.get("metadata") or {}), **extra}
        return self.log(**known)

    @contextlib.contextmanager
    def call(self, model: str, endpoint: str | None = None, **fields: Any) -> Iterator[CallRecord]:
        """Time a call: `with logger.call(model="gpt-4o", endpoint="chat") as rec:`; an
        exception is recorded as its error type (error_type_of) and re-raised."""
        rec = CallRecord({"model": model, "endpoint": endpoint, "status": "ok", **fields})
        t0 = time.perf_counter()
        try:
            yield rec
        except BaseException as exc:
            if rec.status == "ok":
                rec.status = error_type_of(exc)
            raise
        finally:
            f = rec.fields
            if f.get("latency_seconds") is None:
                f["latency_seconds"] = time.perf_counter() - t0
            f["request_id"] = self.log_fields(f)

    def log_rag(
        self,
        query: str | None,
        retrieved_ids: Sequence[str],
        relevant_ids: Sequence[str] | None = None,
        *,
        model: str = "retriever",
        endpoint: str | None = "rag",
        **fields: Any,
    ) -> str:
        """A retrieval: the query (masked like a prompt), the ids retrieved in rank order,
        and the ids known to be relevant when there is a judgement."""
        return self.log(
            model, endpoint=endpoint, prompt=query, retrieved_ids=retrieved_ids, relevant_ids=relevant_ids, **fields
        )

    # -- the flusher ----------------------------------------------------------------------------

    def _prepare(self, items: list[tuple[Any, ...]], pause: bool = False) -> list[dict[str, Any]]:
        out = []
        m = self.masker
        for i, item in enumerate(items):
            if pause and i % _SLICE == _SLICE - 1:
                # Let the app's threads have the GIL: without a pause the event loop
                # waits up to the 5 ms switch interval behind a batch (p99 +5 ms).
                time.sleep(_PAUSE)
            row = as_row(item)
            reason = check(row, self.features)
            if reason is not None:
                self.stats.rejected[reason] = self.stats.rejected.get(reason, 0) + 1
                continue
            prompt = row.get("prompt")
            if prompt is not None and "prompt_hash" not in row:
                row["prompt_hash"] = prompt_hash(prompt)  # of the text as sent: the cache potential needs no text
            for key in ("prompt", "response"):
                if key in row:
                    row[key] = m.text(row[key])
            if "user_id" in row:
                row["user_id"] = m.user_id(row["user_id"])
            if self.spans is not None:
                try:
                    self.spans.record(row)
                except Exception:  # a tracing failure never costs the row
                    self.stats.rejected["span failed"] = self.stats.rejected.get("span failed", 0) + 1
            out.append(row)
        return out

    def _recover(self) -> None:
        """Spool what killed processes left in their journals (replayed by the flusher)."""
        assert self.spool is not None
        for path, items in wal.recover(self.spool.path, self._journal_dir):
            lost = sum(i is None for i in items)
            prepared = self._prepare([i for i in items if i is not None])
            taken = self.spool.append(prepared) if prepared else 0
            self.stats.spooled += taken
            self.stats.dropped += lost + len(prepared) - taken
            if prepared or lost:
                log.warning("aimon.capture: %d rows recovered from %s (%d unreadable)", taken, path.name, lost)
            path.unlink(missing_ok=True)

    def _overflow(self, item: tuple[Any, ...]) -> None:
        prepared = self._prepare([item])
        taken = self.spool.append(prepared) if self.spool is not None and prepared else 0
        self.stats.spooled += taken
        self.stats.dropped += len(prepared) - taken

    def _deliver(self, rows: list[dict[str, Any]]) -> None:
        if self.spool is not None and (self.spool.pending() or self._down_since is not None):
            taken = self.spool.append(rows)
            self.stats.spooled += taken
            self.stats.dropped += len(rows) - taken
            self._retry()
            return
        batch = self._held + rows
        try:
            self.sink.write(batch)
        except Exception as exc:
            self._failed(exc)
            if self.spool is not None:
                taken = self.spool.append(batch)
                self.stats.spooled += taken
                self.stats.dropped += len(batch) - taken
                self._held = []
            else:  # kept in memory, at most a queue's worth, for the next try
                self.stats.dropped += max(0, len(batch) - self.queue_size)
                self._held = batch[-self.queue_size :]
            return
        self._held = []
        self._down_since = None
        self.stats.written += len(batch)

    def _failed(self, exc: Exception) -> None:
        self.stats.sink_errors += 1
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("aimon.capture: the sink failed (%s); rows go to the spool until it is back", exc)
        self._last_try = time.monotonic()

    def _retry(self, force: bool = False) -> None:
        if self.spool is None or not self.spool.pending():
            return
        if not force and time.monotonic() - self._last_try < self.retry_interval and self._down_since is not None:
            return
        self._last_try = time.monotonic()
        before = self.stats.replayed

        def write(batch: list[dict[str, Any]]) -> None:
            self.sink.write(batch)
            self.stats.replayed += len(batch)
            self.stats.written += len(batch)

        try:
            self.spool.replay(write, self.batch_size)
        except Exception as exc:
            self._failed(exc)
            return
        if self._down_since is not None or self.stats.replayed > before:
            log.warning("aimon.capture: the sink is back; %d spooled rows loaded", self.stats.replayed - before)
        self._down_since = None

    def flush(self, *, force_retry: bool = True) -> None:
        """Write everything queued now (the flusher does it every flush_interval; a
        spool left by an outage is tried again at once, not after retry_interval)."""
        with self._flush_lock:
            self._retry(force=force_retry)
            while self._q or self._held:
                n = min(len(self._q), self.batch_size)
                batch = [self._q.popleft() for _ in range(n)]
                prepared = self._prepare(batch, pause=True)
                if prepared or self._held:
                    self._deliver(prepared)
                if self._journal is not None:
                    self._journal.commit(n)  # in the sink, in the spool, or counted
                if self._held and not self._q:
                    break  # the sink is down and there is no spool: kept for the next flush
            release = getattr(self.sink, "release", None)
            if release is not None:
                release()  # idle: a DuckDB file's lock is free for the monitoring runs

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                if self._journal is not None:
                    self._journal.prepare()
                self.flush(force_retry=False)
            except Exception:  # a bug here must not kill the flusher
                log.exception("aimon.capture: flush failed")
            now = time.monotonic()
            new_drops = self.stats.dropped > self._dropped_reported
            if new_drops and (self._dropped_reported == 0 or now - self._last_report >= 60):  # once a minute
                log.warning(
                    "aimon.capture: %d rows dropped (queue and spool full, or no spool)",
                    self.stats.dropped - self._dropped_reported,
                )
                self._dropped_reported = self.stats.dropped
                self._last_report = now

    def close(self, timeout: float = 10.0) -> None:
        """Flush and stop the flusher (registered at exit). Rows the sink cannot take by
        then stay in the spool, or are counted as dropped without one."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        try:
            self.flush()
        except Exception:
            log.exception("aimon.capture: the last flush failed")
        if self._held:
            self.stats.dropped += len(self._held)
            log.warning(
                "aimon.capture: %d rows dropped at close: the sink is down and there is no spool", len(self._held)
            )
            self._held = []
        if self._journal is not None:
            self._journal.close()
        self.sink.close()
        if self.spans is not None:
            with contextlib.suppress(Exception):
                self.spans.flush()
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)

    def __enter__(self) -> InteractionLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
