"""Per-segment analyses (orchestration.segments): a window is split into N equal time
segments; a plain function ``(ctx, segment) -> summary`` reads and summarises one
segment's rows, and the caller merges the summaries (drift: aimon.tasks.drift.reads
``merge_numeric`` and ``embeddings_segmented``; RAG: aimon.tasks.quality.rag ``RagSums.merge``).

Where the segments run is the context's ``segment_map``. None runs them one after
another in the caller's thread, so memory holds one segment's columns at a time. The
Dask fan-out (fanout.py) sets one that submits each segment as a Prefect task
to the DaskTaskRunner, shipping only the function (pickled by reference), the config,
the window and the segment's bounds; the worker opens its own warehouse connection,
as ``analyze_in_worker`` does for whole analyzers.

A segment function must therefore be a module-level function (or a
``functools.partial`` of one with small arguments), return something small and
picklable, and read only rows with ``segment.start <= timestamp < segment.end``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TypeVar

from aimon.tasks.orchestration.context import AnalysisContext
from aimon.windows import Window

T = TypeVar("T")


def segment_bounds(window: Window, n: int) -> list[Window]:
    """`n` half-open segments of equal length (to the microsecond) that cover `window`
    exactly: every row of the window falls in exactly one segment."""
    if n < 1:
        raise ValueError(f"orchestration.segments must be at least 1, got {n}")
    span = window.end - window.start
    cuts = [window.start + span * i // n for i in range(n)] + [window.end]
    return [Window(a, b, window.granularity, window.timezone) for a, b in itertools.pairwise(cuts)]


def segmented(ctx: AnalysisContext) -> bool:
    return ctx.cfg.orchestration.segments > 1


def map_segments(ctx: AnalysisContext, fn: Callable[[AnalysisContext, Window], T], window: Window) -> list[T]:
    """`fn` over each of `window`'s orchestration.segments segments, in time order."""
    return run_calls(ctx, [(fn, b) for b in segment_bounds(window, ctx.cfg.orchestration.segments)])


def run_calls(ctx: AnalysisContext, calls: Sequence[tuple[Callable[[AnalysisContext, Window], T], Window]]) -> list[T]:
    """Each (segment function, segment) call, where ctx.segment_map says; results in order."""
    if ctx.segment_map is not None:
        return ctx.segment_map(list(calls))
    return [fn(ctx, b) for fn, b in calls]


def describe_segments(ctx: AnalysisContext, what: str) -> str:
    where = "on the Dask workers" if ctx.segment_map is not None else "one after another"
    return f"{what}: read in {ctx.cfg.orchestration.segments} time segments, {where}, and merged"
