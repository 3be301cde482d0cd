"""The logger's flusher: the queued tuples as rows (checked, masked, hashed), written
to the sink in batches, spooled on an outage and replayed, what dead processes left
in their journals recovered, and the flusher thread's loop. `Delivery` is
InteractionLogger's base (aimon.capture.logger): the request path is there, the
delivery here.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aimon.capture import journal as wal
from aimon.capture.masking import Masker
from aimon.capture.record import check
from aimon.capture.sinks import PAUSE_EVERY, Sink
from aimon.capture.spool import Spool
from aimon.prompts import prompt_hash

log = logging.getLogger("aimon.capture")


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
# A queued call that makes its row in the flusher (InteractionLogger.defer):
# (_DEFERRED, fn, args); fn(*args) gives the row's fields.
_DEFERRED = object()


def item_of(fields: Mapping[str, Any]) -> tuple[Any, ...]:
    """The queued tuple of a log(**fields) call; names log() does not take ride along in
    metadata (as InteractionLogger.log_fields does)."""
    extra = {k: v for k, v in fields.items() if k not in _LOG_FIELDS}
    meta = fields.get("metadata")
    if extra:
        meta = {**(meta or {}), **extra}
    return (*(fields.get(c) for c in _ROW[:-1]), meta, fields.get("features"))


def as_row(item: tuple[Any, ...]) -> dict[str, Any]:
    """A queued tuple as a row: its non-None values by column, the features merged in."""
    row = {k: v for k, v in zip(_ROW, item, strict=False) if v is not None}
    if item[-1]:
        row.update({k: v for k, v in item[-1].items() if v is not None})
    return row


class Delivery:
    """The flusher's half of InteractionLogger (its state is set by the logger)."""

    sink: Sink
    features: dict[str, str]
    masker: Masker
    batch_size: int
    flush_interval: float
    queue_size: int
    retry_interval: float
    spans: Any
    spool: Spool | None
    stats: CaptureStats
    _q: collections.deque[tuple[Any, ...]]
    _held: list[dict[str, Any]]
    _down_since: float | None
    _last_try: float
    _dropped_reported: int
    _last_report: float
    _stop: threading.Event
    _wake: threading.Event
    _flush_lock: threading.Lock
    _journal: wal.Journal | None
    _journal_dir: Path | None

    def _prepare(self, items: list[tuple[Any, ...]], pause: bool = False) -> list[dict[str, Any]]:
        out = []
        m = self.masker
        for i, item in enumerate(items):
            if pause and i % _SLICE == _SLICE - 1:
                # Let the app's threads have the GIL: without a pause the event loop
                # waits up to the 5 ms switch interval behind a batch (p99 +5 ms).
                time.sleep(_PAUSE)
            if item[0] is _DEFERRED:
                try:
                    item = item_of({"status": "ok", **item[1](*item[2])})
                except Exception:  # a bug in the row's maker must not cost the others
                    self.stats.rejected["deferred row failed"] = self.stats.rejected.get("deferred row failed", 0) + 1
                    continue
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
