"""Publishing a live window's figures to the Prometheus Pushgateway.

One group per job and granularity (`/metrics/job/<job>/granularity/<g>`), pushed
with PUT: the group is replaced as a whole, so a series that vanished from the data
vanishes from the gateway, and every series carries `job` and `granularity`.
Historical windows (backfills, reruns of old windows) are never pushed: the gateway
rejects timestamps, and a past value would show up in Prometheus as the current one.
They go to Prometheus through `aimon export openmetrics` instead.

If the gateway stays down after the retries, the run ends degraded: its figures are
already in the metrics table, and the next live run pushes the current state (a
push replaces the group, so nothing needs replaying).
"""

from __future__ import annotations

import dataclasses
import http.client
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE
from prometheus_client import CollectorRegistry, push_to_gateway, pushadd_to_gateway
from prometheus_client.metrics_core import Metric

from aimon.catalogue import help_text, series_problem
from aimon.config import Config, PushgatewayConfig
from aimon.errors import PushError
from aimon.records import MetricRecord
from aimon.store.metrics import Store
from aimon.tasks.orchestration.run import RunHandle, RunSummary, run_meta

log = logging.getLogger(__name__)

RUN_META = ("monitoring_run_success", "monitoring_run_duration_seconds", "monitoring_last_success_timestamp_seconds")


@dataclass(frozen=True)
class PushResult:
    url: str
    job: str
    granularity: str
    series: int
    attempts: int
    skipped: tuple[str, ...] = ()  # figures that cannot be Prometheus series, and why


class _Figures:
    """A prometheus_client collector over a fixed list of figures: one gauge family per
    metric name; series of one family may carry different label sets (monitoring_rows
    has `reason` only for rejected rows), which plain Gauge objects cannot express."""

    def __init__(self, records: Sequence[MetricRecord]):
        self.by_metric: dict[str, list[MetricRecord]] = defaultdict(list)
        for r in records:
            self.by_metric[r.metric].append(r)

    def collect(self) -> Iterator[Metric]:
        for name in sorted(self.by_metric):
            family = Metric(name, help_text(name), "gauge")
            for r in self.by_metric[name]:
                family.add_sample(name, dict(r.labels), r.value)
            yield family


def pushable(records: Iterable[MetricRecord]) -> tuple[list[MetricRecord], list[str]]:
    """The figures that can become Prometheus series, and why the others cannot."""
    ok: dict[tuple[str, tuple[tuple[str, str], ...]], MetricRecord] = {}
    problems: list[str] = []
    for r in records:
        problem = series_problem(r.metric, r.labels)
        if problem is None:
            ok[(r.metric, r.labels)] = r  # the last figure for a key wins, as in the store
        elif problem not in problems:
            problems.append(problem)
    return list(ok.values()), problems


def registry_of(records: Sequence[MetricRecord]) -> CollectorRegistry:
    # auto_describe=False: the collector has no describe(), so nothing is collected at
    # registration and no name checks run across pushes.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Figures(records))  # type: ignore[arg-type]
    return registry


def safe_url(url: str) -> str:
    """The URL without a password, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _transient(err: BaseException) -> bool:
    """Connection refused or reset, timeouts, 408, 429 and 5xx are worth retrying;
    any other HTTP status is the gateway rejecting the data, which will not change."""
    if isinstance(err, urllib.error.HTTPError):
        return err.code in (408, 429) or err.code >= 500
    return isinstance(err, OSError | http.client.HTTPException)


def _describe(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        try:
            body = err.read().decode("utf-8", "replace").strip()[:300]
        except Exception:  # the body is only extra detail for the message
            body = ""
        return f"HTTP {err.code} {err.reason}" + (f": {body}" if body else "")
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    return f"{type(err).__name__}: {err}"


def push_records(
    pg: PushgatewayConfig,
    granularity: str,
    records: Sequence[MetricRecord],
    *,
    replace: bool = True,
) -> PushResult:
    """Push `records` as the group (job, granularity). `replace` (PUT) replaces the whole
    group; otherwise (POST) only the metric names pushed are replaced."""
    if pg.url is None:
        raise PushError("pushgateway.url is not set: nothing to push to")
    series, skipped = pushable(records)
    registry = registry_of(series)
    send = push_to_gateway if replace else pushadd_to_gateway
    url = safe_url(pg.url)
    last = ""
    for attempt in range(1, pg.attempts + 1):
        try:
            send(
                pg.url,
                job=pg.job,
                registry=registry,
                grouping_key={"granularity": granularity},
                timeout=pg.timeout_seconds,
            )
            return PushResult(url, pg.job, granularity, len(series), attempt, tuple(skipped))
        except (OSError, http.client.HTTPException) as err:
            last = _describe(err)
            if not _transient(err):
                raise PushError(
                    f"the Pushgateway at {url} rejected the push of job={pg.job} granularity={granularity}: {last}"
                ) from None
            log.warning("push to %s failed (attempt %d of %d): %s", url, attempt, pg.attempts, last)
        if attempt < pg.attempts:
            time.sleep(pg.backoff_seconds * 2 ** (attempt - 1))
    raise PushError(
        f"could not reach the Pushgateway at {url} after {pg.attempts} attempts "
        f"(timeout {pg.timeout_seconds:g}s each): {last}"
    )


def check_gateway(pg: PushgatewayConfig) -> str | None:
    """None when the gateway at pg.url answers its readiness probe, else why not."""
    if pg.url is None:
        return "pushgateway.url is not set"
    try:
        with urllib.request.urlopen(f"{pg.url.rstrip('/')}/-/ready", timeout=pg.timeout_seconds) as resp:
            resp.read()
    except (OSError, http.client.HTTPException) as err:
        return _describe(err)
    return None


def mark_degraded(store: Store, summary: RunSummary, reason: str) -> RunSummary:
    """The push failed: the run ends degraded. Its figures stay in the metrics table,
    with the run-meta figures a degraded run has (success 0, no last-success time)."""
    duration = summary.value("monitoring_run_duration_seconds")
    meta = run_meta("degraded", summary.duration_seconds if duration is None else duration)
    records = [r for r in summary.records if r.metric not in RUN_META] + meta
    store.replace_window(summary.window, records, summary.run_id)
    store.degrade_run(summary.run_id, f"pushgateway: {reason}")
    note = (
        f"push failed: {reason}; the figures are safe in {store.where}, and the next live run pushes the current state"
    )
    return dataclasses.replace(summary, status="degraded", records=tuple(records), notes=(*summary.notes, note))


def last_success(store: Store, granularity: str) -> MetricRecord | None:
    """When the latest successful run of a granularity finished, from the runs table
    (the metrics table keeps it per window only, and a rerun replaces the window's)."""
    finished = store.last_success(granularity)
    if finished is None:
        return None
    return MetricRecord.of("monitoring_last_success_timestamp_seconds", finished.timestamp())


def publish_to_pushgateway(cfg: Config, store: Store, summary: RunSummary) -> RunSummary:
    """Push a live window's figures (run-meta included); leave historical ones alone."""
    pg = cfg.pushgateway
    if pg.url is None:
        return summary
    if not summary.live:
        note = "historical window: figures stored, not pushed (load history with `aimon export openmetrics`)"
        return dataclasses.replace(summary, notes=(*summary.notes, note))
    records = list(summary.records)
    if summary.value("monitoring_last_success_timestamp_seconds") is None:
        # A degraded run has no last-success time of its own; the push replaces the
        # group, so carry the last one forward, or the missed-run alert loses its series.
        previous = last_success(store, summary.window.granularity)
        if previous is not None:
            records.append(previous)
    try:
        result = push_records(pg, summary.window.granularity, records)
    except PushError as err:
        return mark_degraded(store, summary, str(err))
    notes = [f"not pushed: {p}" for p in result.skipped]
    notes.append(f"pushed {result.series} series to {result.url} (job={result.job}, granularity={result.granularity})")
    return dataclasses.replace(summary, notes=(*summary.notes, *notes))


def push_run_failure(cfg: Config, run: RunHandle, err: BaseException) -> None:
    """A failed live run: replace only the run-meta figures on the gateway (POST), so
    `monitoring_run_success 0` shows at once while the last good figures stay. One
    attempt: the run has already failed, and its own error is what the caller raises."""
    pg = cfg.pushgateway
    if pg.url is None or not run.live or not isinstance(err, Exception):
        return
    meta = run_meta("failed", time.monotonic() - run.started)
    try:
        push_records(pg.model_copy(update={"attempts": 1}), run.window.granularity, meta, replace=False)
    except PushError as push_err:
        log.warning("could not push the failed run's status: %s", push_err)


@task(name="push", cache_policy=NO_CACHE)
def push_task(cfg: Config, store: Store, summary: RunSummary) -> RunSummary:
    return publish_to_pushgateway(cfg, store, summary)
