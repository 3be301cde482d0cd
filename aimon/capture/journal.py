"""The logger's write-ahead journal: rows logged but not yet delivered survive a kill -9.

With a spool set, `log()` also appends the queued row (orjson) to a memory-mapped
segment file next to the spool, under the same lock as its queue append, so the
journal's order is the queue's. A write into a shared file mapping is the kernel's
page cache at once: a process killed right after log() returned leaves its rows
behind. The segments live in /dev/shm by default (tmpfs: no page faults once a
segment is allocated, so log() stays near 2 us at p99; a directory named after the
spool's path), or in the directory given; either way a reboot, or a container
restart that drops its /dev/shm, loses what was not delivered (at most a flush
interval's rows: delivered records are deleted within a flush). The
flusher commits records as it delivers them (to the sink, or to the spool), and a
segment is deleted once all of its records are committed; a clean close leaves none.

A new logger on the same spool recovers the segments of dead processes (a segment's
file lock, flock, is held by its live owner): the records after the committed count
are prepared like fresh rows and spooled, and the spool's replay loads them (the
sinks are idempotent on request_id, so a record committed just before the kill and
replayed again is not doubled).

Segment layout: 16 header bytes (b"AIMJ", version, committed records as u64), then
records of a u32 length and an orjson payload; the length is written after the
payload, so a record cut by a kill reads as the end. Rows are journaled as logged,
before masking (the flusher masks them within a flush interval; the files are 0600).
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import errno
import hashlib
import logging
import mmap
import os
import struct
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: no journal there
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("aimon.capture")
MAGIC = b"AIMJ\x01\x00\x00\x00"
HEADER = 16
SEGMENT_BYTES = 4 * 1024 * 1024  # ~16k rows; two allocated per logger (the current one, a spare)
_DUMP = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_dumps = orjson.dumps
_LEN = struct.Struct("<I").pack
AVAILABLE = fcntl is not None


def journal_dir(spool_path: Path) -> Path:
    """The default directory of a spool's journal: /dev/shm when the machine has it."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        key = hashlib.sha1(str(spool_path.resolve()).encode()).hexdigest()[:12]
        return shm / f"aimon-journal-{key}"
    return spool_path.parent


def _default(o: Any) -> Any:
    try:
        return float(o)  # Decimal, numpy scalars orjson does not take
    except (TypeError, ValueError):
        return str(o)


class _Segment:
    def __init__(self, path: Path, size: int):
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            assert fcntl is not None
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while this process lives
            os.ftruncate(fd, size)
            if hasattr(os, "posix_fallocate"):  # not on macOS
                try:
                    os.posix_fallocate(fd, 0, size)  # the pages now, not at a fault in log()
                except OSError as err:
                    # No room (a full /dev/shm): no segment, rather than a SIGBUS at a
                    # write into a page that cannot be had.
                    if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                        raise
            self.mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        self.fd = fd
        self.size = size
        self.mm[0:8] = MAGIC
        self.pos = HEADER
        self.records = 0
        self.committed = 0

    def close(self, unlink: bool) -> None:
        self.mm.close()
        if unlink:
            self.path.unlink(missing_ok=True)
        os.close(self.fd)  # the lock goes with it


class Journal:
    def __init__(self, spool_path: Path, directory: Path | None = None, segment_bytes: int = SEGMENT_BYTES):
        if not AVAILABLE:
            raise OSError("the capture journal needs fcntl.flock (POSIX)")
        self.directory = directory if directory is not None else journal_dir(spool_path)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix = f"{spool_path.name}.journal-"
        self.segment_bytes = segment_bytes
        self._stem = f"{self.prefix}{os.getpid()}-{uuid.uuid4().hex[:8]}-"
        self._lock = threading.Lock()
        self._segments: collections.deque[_Segment] = collections.deque()
        self._count = 0
        self._spare: _Segment | None = None
        self.broken: str | None = None  # why the journal stopped (no room for a segment), if it did
        self._cur = self._new_segment(0)
        # The current segment's map, write position, size and records, on self: the
        # request path's attribute lookups (seg.records is set when it is rolled over).
        self._mm, self._pos, self._size, self._n = self._cur.mm, HEADER, self._cur.size, 0

    def _new_segment(self, need: int) -> _Segment:
        seg = None
        if self._spare is not None and need <= self.segment_bytes - HEADER - 4:
            seg, self._spare = self._spare, None  # a record too big for it leaves the spare for later
        if seg is None:
            seg = self._make(max(self.segment_bytes, HEADER + 4 + need))
        self._segments.append(seg)
        return seg

    def _make(self, size: int) -> _Segment:
        self._count += 1
        return _Segment(self.directory / f"{self._stem}{self._count:06d}", size)

    def prepare(self) -> None:
        """Allocate the next segment ahead (the flusher calls it), so the log() that
        fills a segment does not pay for the next one."""
        if self._spare is None and self.broken is None:
            try:
                spare = self._make(self.segment_bytes)
            except OSError:
                return  # the log() that fills the segment tries again, and stops journaling if it fails
            with self._lock:
                if self._spare is None:
                    self._spare = spare
                    return
            spare.close(unlink=True)

    def append(self, item: tuple[Any, ...], queue: collections.deque[tuple[Any, ...]]) -> None:
        """Journal `item` and put it on `queue`, in one order for both. One copy into
        the map, length first: a kill in the middle of it leaves a record that does not
        parse, last in its segment, of a log() call that had not returned."""
        try:
            b = _dumps(item, default=_default, option=_DUMP)
        except Exception:  # not serialisable: journaled as a gap, counted at recovery
            b = b"null"
        n = len(b)
        with self._lock:
            if self.broken is not None:
                queue.append(item)
                return
            pos = self._pos
            end = pos + 4 + n
            if end > self._size:
                try:
                    self._roll(n)
                except OSError as err:  # no room for a segment: the queue goes on without the journal
                    self.broken = f"{type(err).__name__}: {err}"
                    log.warning("aimon.capture: the journal stopped (%s); a kill -9 can lose the queue now", err)
                    queue.append(item)
                    return
                pos = self._pos
                end = pos + 4 + n
            self._mm[pos:end] = _LEN(n) + b
            self._pos = end
            self._n += 1
            queue.append(item)

    def _roll(self, need: int) -> None:
        self._cur.records, self._cur.pos = self._n, self._pos
        self._cur = self._new_segment(need)
        self._mm, self._pos, self._size, self._n = self._cur.mm, HEADER, self._cur.size, 0

    def _records(self, seg: _Segment) -> int:
        return self._n if seg is self._cur else seg.records

    def commit(self, n: int) -> None:
        """The oldest `n` uncommitted records are delivered (to the sink or the spool)."""
        done: list[_Segment] = []
        with self._lock:
            while n > 0 and self._segments:
                seg = self._segments[0]
                take = min(n, self._records(seg) - seg.committed)
                seg.committed += take
                n -= take
                seg.mm[8:16] = seg.committed.to_bytes(8, "little")
                if seg.committed == seg.records and seg is not self._cur:
                    done.append(self._segments.popleft())
                elif take == 0:
                    break
        for seg in done:  # unmapped and removed off the lock: log() does not wait for it
            seg.close(unlink=True)

    def forget(self) -> None:
        """A forked child's copy of its parent's journal: unmap and close it here, and
        leave the files and their locks to the parent."""
        for seg in [*self._segments, *([self._spare] if self._spare else [])]:
            with contextlib.suppress(Exception):
                seg.mm.close()
            with contextlib.suppress(OSError):
                os.close(seg.fd)  # the parent's descriptor keeps the lock
        self._segments.clear()
        self._spare = None

    def close(self) -> None:
        """Remove the segments when every record is committed; keep them otherwise (the
        next logger on this spool recovers them)."""
        with self._lock:
            done = all(s.committed == self._records(s) for s in self._segments)
            for seg in self._segments:
                seg.close(unlink=done)
            self._segments.clear()
            if self._spare is not None:
                self._spare.close(unlink=True)
                self._spare = None
            if done:
                with contextlib.suppress(OSError):
                    self.directory.rmdir()  # when no other logger's segments are there


def _records(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    if data[:4] != MAGIC[:4]:
        return
    committed = int.from_bytes(data[8:16], "little")
    pos, i = HEADER, 0
    while pos + 4 <= len(data):
        n = int.from_bytes(data[pos : pos + 4], "little")
        if n == 0 or pos + 4 + n > len(data):
            return
        if i >= committed:
            yield data[pos + 4 : pos + 4 + n]
        pos += 4 + n
        i += 1


def recover(spool_path: Path, directory: Path | None = None) -> Iterator[tuple[Path, list[tuple[Any, ...] | None]]]:
    """The uncommitted records of dead processes' segments of `spool_path`'s journal
    (in `directory`, default journal_dir()), oldest segment first, as queued tuples
    (None for a record that could not be read); the caller deletes each path once its
    rows are safe."""
    if not AVAILABLE:
        return
    assert fcntl is not None
    prefix = f"{spool_path.name}.journal-"
    where = directory if directory is not None else journal_dir(spool_path)
    paths = sorted(p for p in where.glob(f"{prefix}*") if p.is_file())
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live logger's
            items: list[tuple[Any, ...] | None] = []
            for b in _records(path):
                try:
                    v = orjson.loads(b)
                    if not isinstance(v, list):
                        raise ValueError
                    if isinstance(v[0], str):
                        v[0] = dt.datetime.fromisoformat(v[0])
                    items.append(tuple(v))
                except Exception:
                    items.append(None)
            yield path, items
        finally:
            os.close(fd)
