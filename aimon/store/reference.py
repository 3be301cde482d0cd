"""Reference statistics, computed once per reference window and stored.

A drift run compares the current window with a reference made of whole windows (the
previous N, or a fixed baseline). Each window's statistics — per numerical feature a
sorted sample or a quantile sketch, per categorical feature its counts, a seeded
subsample of embeddings — are computed once, stored in the store database
(`drift_reference_stats`), and merged at run time. So a daily run with a seven-day
reference reads one day of rows (its own), not eight: yesterday's current window is
today's reference window, already summarised.

A stored entry is keyed by the window's bounds and a hash of everything that shapes
the statistics (table, column mapping, features, sketch size, embedding sampling,
`STATS_VERSION`), and it carries the window's valid-row count: each run recounts the
reference windows (one aggregate per window) and recomputes any whose count changed
(late rows, a backfill), so a changed reference is never silently reused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from aimon.engines import get_engine, redact
from aimon.stats.stattests import Counts, NumericSample
from aimon.store.schema import REFERENCE_TABLE, create_tables, reference_table

STATS_VERSION = 2  # bump when the statistics' definition changes: old entries are ignored


@dataclass(frozen=True, eq=False)
class WindowStats:
    """What a drift comparison needs from one window, without its rows."""

    rows: int  # valid rows in the window
    numeric: dict[str, NumericSample] = field(default_factory=dict)
    categorical: dict[str, Counts] = field(default_factory=dict)
    embeddings: np.ndarray | None = None  # seeded subsample of the usable rows, float32 (rows x dim)
    embedding_rows: int = 0  # rows with a usable embedding (before subsampling)
    embedding_rejected: dict[str, int] = field(default_factory=dict)  # malformed embeddings read, by reason

    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {}
        meta: dict[str, Any] = {
            "rows": self.rows,
            "embedding_rows": self.embedding_rows,
            "embedding_rejected": self.embedding_rejected,
            "numeric": {},
            "cat": {},
        }
        for i, (name, s) in enumerate(self.numeric.items()):
            arrays[f"n{i}_v"] = s.values
            if s.weights is not None:
                arrays[f"n{i}_w"] = s.weights
            meta["numeric"][name] = {
                "i": i,
                "n": s.n,
                "mean": s.mean,
                "std": s.std,
                "distinct": None if s.distinct is None else s.distinct.as_dict(),
            }
        for name, c in self.categorical.items():
            meta["cat"][name] = c.as_dict()
        if self.embeddings is not None:
            arrays["emb"] = self.embeddings
        buf = io.BytesIO()
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> WindowStats:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            numeric = {}
            for name, m in meta["numeric"].items():
                i = m["i"]
                w = z[f"n{i}_w"] if f"n{i}_w" in z.files else None
                distinct = None if m["distinct"] is None else Counts.of(m["distinct"])
                numeric[name] = NumericSample(z[f"n{i}_v"], w, m["n"], m["mean"], m["std"], distinct=distinct)
            emb = z["emb"] if "emb" in z.files else None
        cat = {name: Counts.of(d) for name, d in meta["cat"].items()}
        return cls(meta["rows"], numeric, cat, emb, meta["embedding_rows"], meta.get("embedding_rejected", {}))


def config_hash(parts: dict[str, Any]) -> str:
    text = json.dumps({"version": STATS_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def entry_key(cfg_hash: str, start: dt.datetime, end: dt.datetime) -> str:
    return hashlib.sha256(f"{cfg_hash}|{start.isoformat()}|{end.isoformat()}".encode()).hexdigest()[:40]


class ReferenceCache:
    """The `drift_reference_stats` table in the store database (any SQLAlchemy URL)."""

    def __init__(self, url: str, table: str = REFERENCE_TABLE):
        self.url = url
        self.engine = get_engine(url)
        self.table = reference_table(table)
        self._ready = False

    def ensure(self) -> None:
        if self._ready:
            return
        create_tables(self.engine, (self.table,), f"table {self.table.name} at {redact(self.url)}")
        self._ready = True

    def get(self, key: str) -> tuple[int, WindowStats] | None:
        self.ensure()
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(self.table.c.rows, self.table.c.payload).where(self.table.c.key == key)
            ).first()
        if row is None:
            return None
        return int(row.rows), WindowStats.from_bytes(bytes(row.payload))

    def rows(self, key: str) -> int | None:
        """The stored entry's row count, without loading it."""
        self.ensure()
        with self.engine.connect() as conn:
            n = conn.execute(sa.select(self.table.c.rows).where(self.table.c.key == key)).scalar()
        return None if n is None else int(n)

    def put(self, key: str, start: dt.datetime, end: dt.datetime, cfg_hash: str, stats: WindowStats) -> None:
        self.ensure()
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with self.engine.begin() as conn:
            conn.execute(self.table.delete().where(self.table.c.key == key))
            conn.execute(
                self.table.insert().values(
                    key=key,
                    window_start=start,
                    window_end=end,
                    config_hash=cfg_hash,
                    rows=stats.rows,
                    computed_at=now,
                    payload=stats.to_bytes(),
                )
            )

    def count(self) -> int:
        self.ensure()
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(self.table)).scalar_one())
