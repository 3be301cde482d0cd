"""The capture side: what runs inside the monitored app to fill the warehouse.

    from aimon.capture import InteractionLogger
    logger = InteractionLogger("duckdb:///warehouse.duckdb", create_table=True, spool="/var/tmp/aimon.spool")
    with logger.call(model="gpt-4o", endpoint="chat", prompt=question) as rec:
        answer = client.chat.completions.create(...)
        rec.usage(answer.usage)
        rec.response = answer.choices[0].message.content

Light on purpose: no Prefect, Evidently, scipy or sklearn (tests/test_capture.py checks
sys.modules); SQLAlchemy and DuckDB only when a warehouse sink writes, FastAPI and
OpenTelemetry only in aimon.capture.asgi / .feedback / .otel (the `capture` extra).
docs/capture.md.
"""

from aimon.capture.calls import CallRecord, error_type_of
from aimon.capture.logger import CaptureStats, InteractionLogger
from aimon.capture.masking import Masker, mask
from aimon.capture.sinks import JsonlSink, Sink, WarehouseSink
from aimon.capture.spool import Spool

__all__ = [
    "CallRecord",
    "CaptureStats",
    "InteractionLogger",
    "JsonlSink",
    "Masker",
    "Sink",
    "Spool",
    "WarehouseSink",
    "error_type_of",
    "mask",
]
