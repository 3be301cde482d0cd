"""Where a run's analyzers execute: Prefect's thread pool (default), or a Dask cluster
through prefect-dask's DaskTaskRunner (orchestration.task_runner: dask).

On Dask, the task is shipped to another process, so it takes what pickles and is
small — the config and the window — and opens its own warehouse connection there,
instead of the AnalysisContext (which holds live SQLAlchemy engines).
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from aimon.config import Config
from aimon.records import AnalyzerResult
from aimon.store import Store
from aimon.windows import Window
from tasks.base import AnalysisContext
from tasks.registry import ANALYZERS
from tasks.run import AnalyzerOutcome, analyze_task, open_window, outcome_of, run_analyzer


def analyze_in_worker(name: str, cfg: Config, window: Window) -> AnalyzerResult:
    return run_analyzer(name, open_window(cfg, window, Store(cfg)))


@task(name="analyze", cache_policy=NO_CACHE)
def analyze_in_worker_task(name: str, cfg: Config, window: Window) -> AnalyzerResult:
    return analyze_in_worker(name, cfg, window)


def dask_runner(cfg: Config) -> Any:
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        from aimon.errors import ConfigError

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


def run_analyzers(cfg: Config, ctx: AnalysisContext, options: dict[str, Any]) -> list[AnalyzerOutcome]:
    """Every registered analyzer as a concurrent task; one failing degrades the run."""
    if cfg.orchestration.task_runner == "dask":
        with dask_runner(cfg) as runner:
            futures = {
                name: runner.submit(
                    analyze_in_worker_task.with_options(name=f"analyze-{name}", **options),
                    {"name": name, "cfg": cfg, "window": ctx.window},
                )
                for name in ANALYZERS
            }
            return [outcome_of(name, f) for name, f in futures.items()]
    futures = {
        name: analyze_task.with_options(name=f"analyze-{name}", **options).submit(name, ctx) for name in ANALYZERS
    }
    return [outcome_of(name, f) for name, f in futures.items()]
