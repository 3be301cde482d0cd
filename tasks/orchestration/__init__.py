"""How a run is operated, as opposed to what it computes. Plain functions plus thin
@task wrappers, like the rest of aimon.tasks:

- context.py   AnalysisContext (window bounds and handles, never rows) and shared SQL
- run.py       resolve the window, claim it, open it, run one analyzer, publish
- fanout.py    where the analyzers run: Prefect's threads, or a Dask cluster
- segments.py  per-time-segment reads, merged (orchestration.segments)
- retries.py   which errors are retried; every task's timeout and retries
- schedule.py  the schedule slot's window and the missed windows to catch up
- artifact.py  the run's markdown artifact in the Prefect UI
"""
