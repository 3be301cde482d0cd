"""Run-time settings: how runs are scheduled, claimed, retried and fanned out, and the
HTML report built after them.

Nothing here changes a figure; it decides when and where the analyses run
(aimon.tasks.orchestration, aimon.flows).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from aimon.config.base import Strict


class OrchestrationConfig(Strict):
    """Scheduling, claims, retries and fan-out (docs: Deploying schedules, Running and backfills)."""

    # A scheduled run first runs up to this many missed windows before its own (windows
    # with no finished run), oldest first; 0 turns catch-up off.
    catchup_windows: int = Field(default=3, ge=0)
    # A run claims its window before it starts; a claim older than this is stale (the
    # run was killed) and the window can be claimed again. Keep it above the longest run.
    claim_expires_after_seconds: float = Field(default=3600.0, gt=0)
    # Every task of a run gives up after this long (the whole run is bounded too).
    task_timeout_seconds: float = Field(default=1800.0, gt=0)
    # Transient warehouse errors only (connection refused, timeouts, deadlocks,
    # serialization failures) are retried, with exponential backoff from this delay.
    retries: int = Field(default=3, ge=0)
    retry_delay_seconds: float = Field(default=5.0, ge=0)
    # Backfill defaults (the CLI flags and the deployment's parameters override them).
    backfill_concurrency: int = Field(default=2, ge=1)
    backfill_order: Literal["oldest", "newest"] = "oldest"
    # Where the analyzers of one run execute: Prefect's thread pool in the flow's
    # process, or a Dask cluster through prefect-dask (pip install 'aimon[dask]'):
    # dask_address null starts a LocalCluster of dask_workers processes on 127.0.0.1;
    # "tcp://scheduler:8786" uses a running cluster. The warehouse must then be reachable
    # from the workers (a server database: a DuckDB file opens in one process only).
    task_runner: Literal["threads", "dask"] = "threads"
    dask_address: str | None = None
    dask_workers: int = Field(default=2, ge=1)
    # Split each window into this many equal time segments for the statistics that read
    # rows (drift's numerical features and embedding subsample, RAG's per-query sums;
    # docs: Scaling out): each segment is read and summarised in its own task (on the
    # Dask workers with task_runner: dask; one after another in the analyzer's thread
    # otherwise, which bounds memory), and the summaries are merged. 1 (the default)
    # reads the window in one go. Capped: every segment is a task and its summary is
    # held by the process that merges them.
    segments: int = Field(default=1, ge=1, le=1000)


class ReportConfig(Strict):
    """The static HTML report (`aimon report`, docs: The HTML report)."""

    # Rebuild the run's window page, the overview and the concern pages after each run
    # (a report that fails to build is a note on the run, never a failed run).
    after_run: bool = False
    # Where the site is written; null: AIMON_HOME/report (a relative path is from the
    # directory aimon runs in).
    output: str | None = None


class TracingConfig(Strict):
    """OpenTelemetry spans of each monitoring run (aimon.tasks.tracing): one root span
    per run and one per step (read, contract, each analyzer, publish, push, alert),
    exported over OTLP/HTTP, so a slow or failing run can be traced. Needs the `capture`
    extra. docs/capture.md, "Spans of a monitoring run"."""

    # An OTLP/HTTP collector's base URL (spans go to /v1/traces), e.g.
    # http://127.0.0.1:6006 for Phoenix or http://collector:4318; null: no spans.
    otlp_endpoint: str | None = None
    service_name: str = "aimon"
    # Extra HTTP headers for the collector (e.g. an API key); values from the environment
    # are better kept out of the file: `headers_env` names variables holding "k=v,k2=v2".
    headers: dict[str, str] = Field(default_factory=dict)
    headers_env: str | None = None


class CaptureConfig(Strict):
    """The capture side in the monitored app (aimon.capture, docs/capture.md):
    `InteractionLogger.from_config(...)` and `aimon ingest` read these."""

    # What leaves the app's process of prompts, responses and feedback comments:
    # full, masked (e-mail, phone, card numbers, API keys and tokens, and mask_patterns
    # replaced) or none.
    store_text: Literal["full", "masked", "none"] = "masked"
    mask_patterns: tuple[str, ...] = ()  # extra regexes masked as <masked>
    # An environment variable holding the key of the user-id hash (HMAC-SHA256); unset:
    # user ids stored as given.
    user_id_key_env: str | None = None
    # A local spool for outages and full queues (a path; relative to the app's directory).
    spool: str | None = None
    # With a spool: journal each logged row (memory-mapped segments in /dev/shm, or this
    # directory) so a kill -9 loses none of them; false: off (at most a flush interval lost).
    journal: bool = True
    journal_dir: str | None = None
    batch_size: int = Field(default=1000, ge=1)
    flush_interval_seconds: float = Field(default=1.0, gt=0)
    queue_size: int = Field(default=100_000, ge=1)

    @field_validator("mask_patterns")
    @classmethod
    def _regexes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            try:
                re.compile(p)
            except re.error as err:
                raise ValueError(f"capture.mask_patterns: {p!r} is not a regex: {err}") from None
        return v
