"""Where a run's analyzers execute: Prefect's thread pool (default), or a Dask cluster
through prefect-dask's DaskTaskRunner (orchestration.task_runner: dask).

On Dask, the task is shipped to another process, so it takes what pickles and is
small — the config and the window — and opens its own warehouse connection there,
instead of the AnalysisContext (which holds live SQLAlchemy engines).

With orchestration.segments > 1 on Dask, the analyzers that read rows (SEGMENTED) run
in this process instead, each in a thread, and hand their per-segment reads to the
cluster: one Prefect task per time segment (segments.py), which gets the
segment function, the config, the window and the segment's bounds, and returns a
small summary that the analyzer merges here. The other analyzers (SQL aggregates)
still run on the workers whole.
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Mapping
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from aimon.config import Config
from aimon.errors import ConfigError
from aimon.records import AnalyzerResult
from aimon.store.metrics import Store
from aimon.tasks.orchestration.context import AnalysisContext, Analyzer, SegmentFn, SegmentMap
from aimon.tasks.orchestration.run import AnalyzerOutcome, analyze_task, open_window, outcome_of, run_analyzer
from aimon.windows import Window


def analyze_in_worker(analyzer: Analyzer, cfg: Config, window: Window) -> AnalyzerResult:
    return run_analyzer(analyzer, open_window(cfg, window, Store(cfg)))


@task(name="analyze", cache_policy=NO_CACHE)
def analyze_in_worker_task(analyzer: Analyzer, cfg: Config, window: Window) -> AnalyzerResult:
    return analyze_in_worker(analyzer, cfg, window)


# The analyzers whose heavy part reads rows per segment (drift's numerical features and
# embedding subsample, quality's RAG sums); the others aggregate in SQL and are not split.
SEGMENTED = ("drift", "quality")


def segment_in_worker(fn: SegmentFn, cfg: Config, window: Window, segment: Window) -> Any:
    return fn(open_window(cfg, window, Store(cfg)), segment)


@task(name="segment", cache_policy=NO_CACHE)
def segment_task(fn: SegmentFn, cfg: Config, window: Window, segment: Window) -> Any:
    return segment_in_worker(fn, cfg, window, segment)


def dask_segment_map(runner: Any, cfg: Config, window: Window, options: dict[str, Any], analyzer: str) -> SegmentMap:
    """A SegmentMap that runs each segment as a Prefect task on `runner` (a started
    DaskTaskRunner) and waits for all of them; a failed segment fails the analyzer.

    Built in the flow's thread, it keeps that thread's context and submits from a copy
    of it: prefect-dask ships the submitting task's run context (its parameters
    included) to the worker, and the analyzer's task holds an AnalysisContext with live
    engines, which does not pickle. So the segments are tasks of the flow run."""
    flow_context = contextvars.copy_context()

    def run(calls: list[tuple[SegmentFn, Window]]) -> list[Any]:
        futures = [
            flow_context.copy().run(
                runner.submit,
                segment_task.with_options(name=f"{analyzer}-segment-{i}", **options),
                {"fn": fn, "cfg": cfg, "window": window, "segment": seg},
            )
            for i, (fn, seg) in enumerate(calls)
        ]
        return [f.result() for f in futures]

    return run


def dask_runner(cfg: Config) -> Any:
    try:
        from prefect_dask import DaskTaskRunner  # noqa: PLC0415  lazy: an optional extra (aimon[dask])
    except ImportError:
        raise ConfigError(
            "orchestration.task_runner is dask but prefect-dask is not installed: pip install 'aimon[dask]'"
        ) from None
    o = cfg.orchestration
    if o.dask_address:
        return DaskTaskRunner(address=o.dask_address)
    # A throwaway local cluster: loopback only, dashboard on a free port.
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": o.dask_workers,
            "threads_per_worker": 1,
            "host": "127.0.0.1",
            "dashboard_address": ":0",
        }
    )


def run_analyzers(
    cfg: Config, ctx: AnalysisContext, options: dict[str, Any], analyzers: Mapping[str, Analyzer]
) -> list[AnalyzerOutcome]:
    """Every analyzer of the table the flow hands over (aimon.tasks.registry.ANALYZERS
    unless it says otherwise) as a concurrent task; one failing degrades the run."""
    if cfg.orchestration.task_runner == "dask":
        segments = cfg.orchestration.segments > 1
        with dask_runner(cfg) as runner:
            futures: dict[str, Any] = {}
            for name, analyzer in analyzers.items():
                opts = {"name": f"analyze-{name}", **options}
                if segments and name in SEGMENTED:
                    here = dataclasses.replace(
                        ctx, segment_map=dask_segment_map(runner, cfg, ctx.window, options, name)
                    )
                    futures[name] = analyze_task.with_options(**opts).submit(analyzer, here)
                else:
                    futures[name] = runner.submit(
                        analyze_in_worker_task.with_options(**opts),
                        {"analyzer": analyzer, "cfg": cfg, "window": ctx.window},
                    )
            return [outcome_of(name, f) for name, f in futures.items()]
    futures = {
        name: analyze_task.with_options(name=f"analyze-{name}", **options).submit(analyzer, ctx)
        for name, analyzer in analyzers.items()
    }
    return [outcome_of(name, f) for name, f in futures.items()]
