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
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from aimon.capture import journal as wal
from aimon.capture.calls import CallRecord, error_type_of
from aimon.capture.delivery import _DEFERRED, _LOG_FIELDS, _PAUSE, CaptureStats, Delivery, as_row
from aimon.capture.masking import Masker, StoreText
from aimon.capture.record import check
from aimon.capture.sinks import JsonlSink, Sink, WarehouseSink
from aimon.capture.spool import Spool
from aimon.errors import CaptureError

log = logging.getLogger("aimon.capture")
UTC = dt.UTC


_LOGGERS: weakref.WeakSet[InteractionLogger] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for lg in list(_LOGGERS):
        if not lg._stop.is_set():
            lg._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class InteractionLogger(Delivery):
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
                try:
                    self._journal = wal.Journal(self.spool.path, self._journal_dir)
                except OSError as err:
                    log.warning("aimon.capture: no journal (%s): a kill -9 can lose the queue", err)
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
                self._push(item, self._journal)
        except CaptureError:
            raise
        except Exception:  # never into the request path
            self.stats.rejected["internal"] = self.stats.rejected.get("internal", 0) + 1
        return rid

    def defer(self, fn: Callable[..., Mapping[str, Any]], *args: Any) -> None:
        """Queue `fn(*args)`, the fields of a log() call, to be made in the flusher: what
        the middleware uses, so parsing bodies is off the request path. With a journal
        (a record must be data) or strict=True (refuse at the call) the fields are made
        now. Give the timestamp and request id in them: they are the call's."""
        try:
            q = self._q
            if self._journal is not None or self.strict or len(q) >= self.queue_size:
                self.log_fields(fn(*args))
                return
            self.stats.logged += 1
            self._push((_DEFERRED, fn, args), None)
        except Exception:  # never into the request path (log_fields raises only in strict mode)
            if self.strict:
                raise
            self.stats.rejected["internal"] = self.stats.rejected.get("internal", 0) + 1

    def _push(self, item: tuple[Any, ...], journal: wal.Journal | None) -> None:
        """Queue `item` (journaled first when given) and wake the flusher at batch_size."""
        q = self._q
        if journal is not None:
            journal.append(item, q)
        else:
            q.append(item)
        if len(q) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

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
