"""OpenTelemetry spans of a monitoring run (`tracing.otlp_endpoint`): a root span
``monitor-window`` per run and a child per step: ``read`` (open the window), ``contract``,
``analyze <name>`` for each analyzer (timed by the analyzer itself, so it holds in
threads and on Dask), ``publish``, ``push``, ``alert``. A failed step's span carries the
exception and an ERROR status; the root span the run's status. Exported over OTLP/HTTP
when the run ends. With tracing off every call here is a no-op and OpenTelemetry is
not imported. docs/capture.md, "Spans of a monitoring run"."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

from aimon.config import Config
from aimon.tasks.orchestration.run import AnalyzerOutcome
from aimon.windows import Window


def _headers(cfg: Config) -> dict[str, str]:
    out = dict(cfg.tracing.headers)
    raw = os.environ.get(cfg.tracing.headers_env or "", "") if cfg.tracing.headers_env else ""
    for part in raw.split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


class RunTracer:
    def __init__(self, cfg: Config, window: Window, run_id: str | None = None):
        self.on = cfg.tracing.otlp_endpoint is not None
        if not self.on:
            return
        from opentelemetry import trace  # noqa: PLC0415  the `capture` extra, only with tracing on

        from aimon.capture.otel import otlp_provider  # noqa: PLC0415

        assert cfg.tracing.otlp_endpoint is not None
        self._trace = trace
        self.provider = otlp_provider(cfg.tracing.otlp_endpoint, cfg.tracing.service_name, _headers(cfg))
        self.tracer = self.provider.get_tracer("aimon.run")
        self.root = self.tracer.start_span(
            "monitor-window",
            attributes={
                "aimon.window.start": window.start.isoformat(),
                "aimon.window.end": window.end.isoformat(),
                "aimon.granularity": window.granularity,
                "aimon.run_id": run_id or "",
            },
        )
        self.parent = trace.set_span_in_context(self.root)

    def set_run(self, run_id: str) -> None:
        if self.on:
            self.root.set_attribute("aimon.run_id", run_id)

    @contextlib.contextmanager
    def step(self, name: str, **attributes: Any) -> Iterator[None]:
        if not self.on:
            yield
            return
        from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

        span = self.tracer.start_span(name, context=self.parent, attributes=attributes)
        try:
            yield
        except BaseException as err:
            span.record_exception(err)
            span.set_status(Status(StatusCode.ERROR, type(err).__name__))
            raise
        finally:
            span.end()

    def analyzers(self, outcomes: Sequence[AnalyzerOutcome], started: float, ended: float) -> None:
        """One span per analyzer, from its own start and duration (an analyzer that
        failed before reporting them spans the fan-out)."""
        if not self.on:
            return
        from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

        for o in outcomes:
            t0 = o.started if o.started else started
            t1 = t0 + o.seconds if o.started else ended
            span = self.tracer.start_span(
                f"analyze {o.name}",
                context=self.parent,
                start_time=int(t0 * 1e9),
                attributes={"aimon.analyzer": o.name, "aimon.records": len(o.result.records) if o.result else 0},
            )
            if o.error:
                span.set_attribute("error.type", "analyzer_failed")
                span.set_status(Status(StatusCode.ERROR, o.error[:200]))
            span.end(end_time=int(t1 * 1e9))

    def end(self, status: str, error: BaseException | None = None) -> None:
        if not self.on:
            return
        from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

        self.root.set_attribute("aimon.run.status", status)
        if error is not None:
            self.root.record_exception(error)
        if status == "failed" or error is not None:
            self.root.set_status(Status(StatusCode.ERROR, status))
        self.root.end()
        self.provider.force_flush(10_000)
        self.provider.shutdown()
        self.on = False


def now() -> float:
    return time.time()
