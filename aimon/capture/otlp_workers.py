"""`aimon ingest otlp`'s worker processes (aimon.capture.otlp.ingest_otlp, for inputs
of PARALLEL_BYTES or more): the files' documents in groups of ~_TASK_BYTES, parsed and
mapped by spawned processes, which send Arrow batches back to the one process that
writes them, in the files' order.
"""

from __future__ import annotations

import collections
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aimon.capture.masking import Masker
from aimon.capture.record import loads
from aimon.capture.sinks import Sink, arrow_batch, first_per_id
from aimon.capture.span_rows import TraceReport, spans_of

_TASK_BYTES = 2 * 1024 * 1024


def _tasks(paths: list[Path]) -> Iterator[tuple[list[bytes], bool]]:
    """The files' documents in groups of ~_TASK_BYTES: (documents, one per line?)."""
    for path in paths:
        data = path.read_bytes()
        lines = [line for line in data.splitlines() if line.strip()]
        try:
            jsonl = len(lines) > 1 and isinstance(loads(lines[0]), dict)
        except ValueError:
            jsonl = False
        if not jsonl:
            yield [data], False
            continue
        group: list[bytes] = []
        size = 0
        for line in lines:
            group.append(line)
            size += len(line)
            if size >= _TASK_BYTES:
                yield group, True
                group, size = [], 0
        if group:
            yield group, True


@contextlib.contextmanager
def _main_not_reimported() -> Iterator[None]:
    """A spawned worker runs the parent's __main__ module again when it names a file:
    for the `aimon` console script that is the whole CLI's import, 2.4 s a worker. The
    workers need only this module, so while they start __main__ names none."""
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__.pop(k) for k in ("__file__",) if main is not None and k in main.__dict__}
    spec = getattr(main, "__spec__", None)
    if main is not None:
        main.__spec__ = None
    try:
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)
            main.__spec__ = spec


def _worker_init() -> None:
    import gc  # noqa: PLC0415

    import pyarrow  # noqa: F401, PLC0415  imported once, before the first task

    gc.disable()  # as in a load (aimon.capture.ingest._session)


def _map_task(task: tuple[list[bytes], bool], masker: Masker) -> tuple[Any, int, TraceReport]:
    """A worker's part: parse and map one group of documents; the rows as an Arrow
    batch (one per request_id: what the sink's write_arrow takes) and their count."""
    docs, jsonl = task
    report = TraceReport()
    parsed: list[Any] = []
    for doc in docs:
        try:
            v = loads(doc)
        except ValueError:
            report.skipped["line not JSON" if jsonl else "not JSON"] += 1
            continue
        parsed.extend(v if isinstance(v, list) and not jsonl else [v])
    rows = list(spans_of(parsed, report, masker))
    return arrow_batch(first_per_id(rows)), len(rows), report


def load_from_workers(paths: list[Path], sink: Sink, masker: Masker, report: TraceReport, workers: int) -> None:
    """Every task's rows, in the files' order, mapped by `workers` spawned processes and
    written here; at most two tasks a worker in flight (memory stays bounded)."""
    import functools  # noqa: PLC0415
    import multiprocessing  # noqa: PLC0415
    from concurrent.futures import Future, ProcessPoolExecutor  # noqa: PLC0415

    from aimon.capture.ingest import _session  # noqa: PLC0415

    fn = functools.partial(_map_task, masker=masker)
    write = getattr(sink, "write_arrow", None)
    ctx = multiprocessing.get_context("spawn")
    with _session(sink), ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init) as ex:
        with _main_not_reimported():  # start every worker now, while this process reads the files
            for _ in range(workers):
                ex.submit(_worker_init)
        pending: collections.deque[Future[tuple[Any, int, TraceReport]]] = collections.deque()
        tasks = _tasks(paths)
        for task in tasks:
            pending.append(ex.submit(fn, task))
            if len(pending) >= 2 * workers:
                break
        while pending:
            batch, n, part = pending.popleft().result()
            nxt = next(tasks, None)
            if nxt is not None:
                pending.append(ex.submit(fn, nxt))
            report.spans += part.spans
            report.unmapped += part.unmapped
            report.skipped.update(part.skipped)
            if n:
                added = write(batch) if write is not None else sink.write(batch.to_pylist())
                report.valid += n
                report.loaded += n if added is None else added
