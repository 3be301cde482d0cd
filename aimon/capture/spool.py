"""The logger's local spool: rows the sink could not take (an outage) or the queue
could not hold (a burst), kept in a JSONL file and replayed in order when the sink is
back, and by the next process after a restart.

Appends go to `path`; a replay first renames it to `path.replaying` (atomic), so the
request path can keep spilling while the old rows load. A failed replay keeps the
renamed file, which the next replay loads first: the order is kept. Loading is
idempotent on request_id (the sinks skip ids they hold), so a replay cut short and
repeated never doubles a row.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aimon.capture.record import from_json, to_jsonl


class Spool:
    def __init__(self, path: str | os.PathLike[str], max_bytes: int = 256 * 1024 * 1024, fsync: bool = False):
        self.path = Path(path)
        self.replaying = self.path.with_name(self.path.name + ".replaying")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.fsync = fsync
        self._lock = threading.Lock()
        self._replay_lock = threading.Lock()

    def after_fork(self) -> None:
        """New locks in a forked child (a lock held by a parent's thread at the fork
        would stay held here)."""
        self._lock = threading.Lock()
        self._replay_lock = threading.Lock()

    def size(self) -> int:
        return sum(p.stat().st_size for p in (self.replaying, self.path) if p.exists())

    def pending(self) -> bool:
        return self.size() > 0

    def append(self, rows: list[dict[str, Any]]) -> int:
        """Write `rows` at the end; returns how many were taken (fewer when the spool
        would grow past max_bytes: the caller counts the rest as dropped)."""
        lines = [to_jsonl(r) for r in rows]
        with self._lock:
            room = self.max_bytes - self.size()
            taken = 0
            with open(self.path, "ab") as f:
                for line in lines:
                    n = len(line)
                    if n > room:
                        break
                    f.write(line)
                    room -= n
                    taken += 1
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
        return taken

    def _rows(self, path: Path) -> Iterator[dict[str, Any]]:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.endswith("\n"):  # a line cut by a crash mid-write is left out
                    yield from_json(json.loads(line))

    def replay(self, write: Callable[[list[dict[str, Any]]], None], batch_size: int = 1000) -> int:
        """Load the spooled rows through `write`, oldest first, in batches; returns the
        rows loaded. Raises what `write` raises (the rows stay spooled)."""
        with self._replay_lock:
            done = 0
            while True:
                with self._lock:
                    if not self.replaying.exists():
                        if not (self.path.exists() and self.path.stat().st_size):
                            return done
                        os.replace(self.path, self.replaying)
                batch: list[dict[str, Any]] = []
                for row in self._rows(self.replaying):
                    batch.append(row)
                    if len(batch) >= batch_size:
                        write(batch)
                        done += len(batch)
                        batch = []
                if batch:
                    write(batch)
                    done += len(batch)
                self.replaying.unlink()  # then what was spilled while this ran, if anything
