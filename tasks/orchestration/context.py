"""What every analyzer receives, and helpers they share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from aimon.config import Config
from aimon.config.sources import ERROR_TYPES
from aimon.records import ALL, AnalyzerResult
from aimon.store.metrics import Store
from aimon.warehouse import Interactions, Warehouse, window_params
from aimon.windows import Window

UNKNOWN = "unknown"  # label value for a null (or absent) optional label column


# A segment function reads and summarises one time segment's rows (segments.py).
SegmentFn = Callable[["AnalysisContext", Window], Any]
# Runs (segment function, segment bounds) calls and returns their summaries in order
# (the Dask one is in fanout.py).
SegmentMap = Callable[[list[tuple[SegmentFn, Window]]], list[Any]]


@dataclass(frozen=True)
class AnalysisContext:
    """Window bounds and handles, never rows: each analyzer reads what it needs."""

    cfg: Config
    window: Window
    warehouse: Warehouse
    interactions: Interactions
    store: Store
    # Where per-segment analyses run (orchestration.segments > 1): None runs them one
    # after another in the analyzer's own thread.
    segment_map: SegmentMap | None = None

    @property
    def params(self) -> dict[str, Any]:
        return window_params(self.window)


# An analyzer: a plain function of the window's context (aimon.tasks.registry lists them).
Analyzer = Callable[[AnalysisContext], AnalyzerResult]


def endpoint_expr(ix: Interactions) -> sa.ColumnElement[Any]:
    ep = ix.col("endpoint")
    if ep is None:
        return sa.literal_column(f"'{UNKNOWN}'")
    return sa.func.coalesce(sa.cast(ep, sa.String), sa.literal_column(f"'{UNKNOWN}'"))


def status_class_expr(ix: Interactions) -> sa.ColumnElement[str]:
    """'ok', one of ERROR_TYPES, or 'other' (case- and whitespace-insensitive)."""
    st = sa.func.lower(sa.func.trim(sa.cast(ix.req("status"), sa.String)))
    return sa.case(
        (st == "ok", sa.literal_column("'ok'")),
        *[(st == e, sa.literal_column(f"'{e}'")) for e in ERROR_TYPES],
        else_=sa.literal_column("'other'"),
    )


def rollup(df: pd.DataFrame, sums: Sequence[str], keys: Sequence[str] = ("model", "endpoint")) -> pd.DataFrame:
    """Per (model, endpoint), per model over all endpoints, and overall.

    Roll-up rows carry the label value ``__all__``; an empty frame still yields the
    overall row (of zeros), so an empty window records zero requests.
    """
    keys = list(keys)
    base = df.groupby(keys, as_index=False, dropna=False)[list(sums)].sum() if len(df) else df[keys + list(sums)]
    parts = [base]
    for i in range(len(keys) - 1, -1, -1):
        kept = keys[:i]
        if kept:
            part = df.groupby(kept, as_index=False)[list(sums)].sum() if len(df) else None
        else:
            part = pd.DataFrame([{s: df[s].sum() if len(df) else 0 for s in sums}])
        if part is None or part.empty:
            continue
        for k in keys[i:]:
            part[k] = ALL
        parts.append(part[keys + list(sums)])
    return pd.concat(parts, ignore_index=True)
