"""Per-window sufficient statistics of A/B experiments, in the metrics store's database.

One row per (experiment, variant, metric, window): the count, sums, sums of squares
and the cross-product a ratio metric needs. A daily run computes its own window and
adds it to the stored earlier windows, so the analysis is cumulative from the
experiment's start without re-reading the experiment's rows. Writing a window
deletes and inserts its rows in one transaction: a rerun replaces, never duplicates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from aimon.config import Config
from aimon.engines import redact
from aimon.stats.abtests import Moments
from aimon.store.schema import as_datetime, create_tables, schema, store_engine, utcnow
from aimon.windows import Window

ASSIGNMENTS = "__assignments__"  # pseudo-metric: units assigned to the variant (n only)
OTHER_VARIANT = "__other__"  # rows of the experiment whose variant is not configured


@dataclass(frozen=True)
class StatRow:
    variant: str
    metric: str
    moments: Moments


class ABStatsStore:
    def __init__(self, cfg: Config):
        self.url = cfg.store_url
        self.engine = store_engine(cfg)
        self.table = schema(cfg).ab_stats

    @property
    def where(self) -> str:
        return f"table {self.table.name} at {redact(self.url)}"

    def ensure(self) -> None:
        create_tables(self.engine, (self.table,), f"the A/B statistics table {self.where}")

    def write_window(self, experiment: str, window: Window, rows: Sequence[StatRow], run_id: str) -> None:
        """Replace the window's statistics of this experiment, atomically."""
        t = self.table
        now = utcnow()
        values = [
            {
                "experiment": experiment,
                "variant": r.variant,
                "metric": r.metric,
                "window_start": window.start,
                "window_end": window.end,
                "granularity": window.granularity,
                "n": int(r.moments.n),
                "sum_x": float(r.moments.sum_x),
                "sum_x2": float(r.moments.sum_x2),
                "sum_y": float(r.moments.sum_y),
                "sum_y2": float(r.moments.sum_y2),
                "sum_xy": float(r.moments.sum_xy),
                "run_id": run_id,
                "computed_at": now,
            }
            for r in rows
        ]
        with self.engine.begin() as conn:
            conn.execute(
                t.delete().where(
                    t.c.experiment == experiment,
                    t.c.window_start == window.start,
                    t.c.granularity == window.granularity,
                )
            )
            if values:
                conn.execute(t.insert(), values)

    def covered_windows(
        self, experiment: str, granularity: str, metrics: Iterable[str], start: dt.datetime, before: dt.datetime
    ) -> set[dt.datetime]:
        """Window starts in [start, before) whose stored rows cover every metric."""
        t = self.table
        wanted = set(metrics) | {ASSIGNMENTS}
        q = (
            sa.select(t.c.window_start, t.c.metric)
            .where(
                t.c.experiment == experiment,
                t.c.granularity == granularity,
                t.c.window_start >= start,
                t.c.window_start < before,
            )
            .distinct()
        )
        seen: dict[dt.datetime, set[str]] = {}
        with self.engine.connect() as conn:
            for ws, metric in conn.execute(q):
                seen.setdefault(as_datetime(ws), set()).add(metric)
        return {ws for ws, got in seen.items() if wanted <= got}

    def first_window(self, experiment: str, granularity: str) -> dt.datetime | None:
        t = self.table
        q = sa.select(sa.func.min(t.c.window_start)).where(t.c.experiment == experiment, t.c.granularity == granularity)
        with self.engine.connect() as conn:
            v = conn.execute(q).scalar_one_or_none()
        return None if v is None else as_datetime(v)

    def load(
        self, experiment: str, granularity: str, start: dt.datetime, until: dt.datetime
    ) -> dict[dt.datetime, list[StatRow]]:
        """Stored rows per window start, for windows starting in [start, until]."""
        t = self.table
        q = (
            sa.select(t)
            .where(
                t.c.experiment == experiment,
                t.c.granularity == granularity,
                t.c.window_start >= start,
                t.c.window_start <= until,
            )
            .order_by(t.c.window_start)
        )
        out: dict[dt.datetime, list[StatRow]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(q).mappings():
                m = Moments(
                    int(r["n"]),
                    float(r["sum_x"]),
                    float(r["sum_x2"]),
                    float(r["sum_y"]),
                    float(r["sum_y2"]),
                    float(r["sum_xy"]),
                )
                out.setdefault(as_datetime(r["window_start"]), []).append(StatRow(r["variant"], r["metric"], m))
        return out
